namespace Relayd.Admission;

/// <summary>
/// An ordered list of admission rules, built once per path (see <see cref="AdmissionPipelines"/>): the first rule
/// that refuses answers, as a partner reads one refusal per envelope or MediaOpen.
/// </summary>
internal sealed class AdmissionPipeline
{
    private readonly IAdmissionRule[] _beforeDedup;
    private readonly IAdmissionRule[] _afterDedup;

    public AdmissionPipeline(params IAdmissionRule[] rules)
    {
        Rules = rules;
        _beforeDedup = [.. rules.Where(r => r.Stage == AdmissionStage.BeforeDedup)];
        _afterDedup = [.. rules.Where(r => r.Stage == AdmissionStage.AfterDedup)];
    }

    /// <summary>Every rule, in the order given (each stage keeps that order).</summary>
    public IReadOnlyList<IAdmissionRule> Rules { get; }

    /// <summary>The <see cref="AdmissionStage.BeforeDedup"/> rules.</summary>
    public bool Admit(in AdmissionRequest request, out AdmissionRefusal refusal) => Check(_beforeDedup, request, out refusal);

    /// <summary>The <see cref="AdmissionStage.AfterDedup"/> rules, for what is not already stored.</summary>
    public bool AdmitNew(in AdmissionRequest request, out AdmissionRefusal refusal) => Check(_afterDedup, request, out refusal);

    private static bool Check(IAdmissionRule[] rules, in AdmissionRequest request, out AdmissionRefusal refusal)
    {
        foreach (IAdmissionRule rule in rules)
        {
            if (!rule.Check(request, out refusal))
            {
                return false;
            }
        }

        refusal = default;
        return true;
    }
}
