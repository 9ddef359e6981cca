namespace Ringvisor.Machine.Images;

/// <summary>Exit status and captured output of an external tool run.</summary>
internal sealed record ToolResult(int ExitCode, string StandardOutput, string StandardError);
