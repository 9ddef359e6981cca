// One entry of a vCPU's cache of recently used code pages (Cpu.SwitchFetchPage): the linear page, the MMU epoch in
// which it was seen to lead to the decoded page, and the host mapping of that page. Epoch -1 never matches.
namespace Ringvisor.Emulator.Decoding;

internal readonly record struct RecentFetchPage(ulong LinearPage, long Epoch, CodePage? Page, nint HostPage);
