namespace Ringvisor.Machine.Tests.Images;

/// <summary>One entry as the tests' independent newc parser saw it.</summary>
internal sealed record CpioEntry(string Name, uint Inode, uint Mode, uint Nlink, uint RdevMajor, uint RdevMinor, byte[] Data, int HeaderOffset);
