using System.Text.Json.Serialization;

namespace Ringvisor.Machine.Images;

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(GuestImageManifest))]
internal sealed partial class GuestImageJsonContext : JsonSerializerContext
{
}
