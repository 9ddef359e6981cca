// Finds the per-VM translation cache of a CpuHost (one per engine, shared by its vCPUs) without a field in CpuHost:
// a weak table, so the cache lives exactly as long as the host.
using System.Runtime.CompilerServices;

namespace Ringvisor.Emulator.Translation;

internal static class TranslationCaches
{
    private static readonly ConditionalWeakTable<CpuHost, TranslationCache> s_caches = new();

    public static TranslationCache For(CpuHost host) =>
        s_caches.GetValue(host, h => new TranslationCache(h.Options.TranslationBudgetBytes, h.CodePages));
}
