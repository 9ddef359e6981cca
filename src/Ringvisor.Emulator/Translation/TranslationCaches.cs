// Finds the per-VM translation cache of a CpuHost (one per engine, shared by its vCPUs) without a field in CpuHost:
// a weak table, so the cache lives exactly as long as the host.
using System.Runtime.CompilerServices;

namespace Ringvisor.Emulator.Translation;

internal static class TranslationCaches
{
    private static readonly ConditionalWeakTable<CpuHost, TranslationCache> s_caches = new();
    private static readonly Lock s_gate = new();

    /// <summary>
    /// The host's cache, created on first use. Created under a lock, not with ConditionalWeakTable.GetValue: that may
    /// run its factory on several threads at once (the vCPUs of a VM start together) and keep one result, and the
    /// discarded cache would stay subscribed to the page tracker, reporting nothing to the one in use.
    /// </summary>
    public static TranslationCache For(CpuHost host)
    {
        lock (s_gate)
        {
            if (!s_caches.TryGetValue(host, out var cache))
            {
                cache = new TranslationCache(host.Options.TranslationBudgetBytes, host.CodePages);
                s_caches.Add(host, cache);
            }

            return cache;
        }
    }
}
