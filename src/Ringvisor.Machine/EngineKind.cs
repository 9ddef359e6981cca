namespace Ringvisor.Machine;

/// <summary>Which CPU engine runs the guest.</summary>
public enum EngineKind
{
    /// <summary>kvm where the host CPU offers VT-x/AMD-V and /dev/kvm is usable, otherwise bt.</summary>
    Auto,

    /// <summary>Hardware-assisted: Linux KVM runs the guest, Ringvisor handles its exits.</summary>
    Kvm,

    /// <summary>Software: the x86-64 interpreter/translator with a software MMU.</summary>
    Bt,
}
