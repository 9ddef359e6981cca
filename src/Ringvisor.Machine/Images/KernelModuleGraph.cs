// The module dependency graph of one kernel, from modules.dep (depmod's output: "kernel/a.ko: kernel/b.ko ...") or,
// when a package ships none (Debian runs depmod in postinst), from each module's own .modinfo "depends=" string.
// modules.builtin names the drivers compiled into the kernel: those need no insmod and never appear as dependencies.
namespace Ringvisor.Machine.Images;

public sealed class KernelModuleGraph
{
    private readonly Dictionary<string, string> _pathsByName;
    private readonly HashSet<string> _builtIn;
    private readonly Func<string, IReadOnlyList<string>> _dependsOf;
    private readonly Dictionary<string, IReadOnlyList<string>> _dependsCache = new(StringComparer.Ordinal);

    private KernelModuleGraph(Dictionary<string, string> pathsByName, HashSet<string> builtIn, Func<string, IReadOnlyList<string>> dependsOf)
    {
        _pathsByName = pathsByName;
        _builtIn = builtIn;
        _dependsOf = dependsOf;
    }

    /// <summary>How many loadable modules the kernel has.</summary>
    public int ModuleCount => _pathsByName.Count;

    public bool IsBuiltIn(string name) => _builtIn.Contains(KernelModuleInfo.NormalizeName(name));

    public bool IsModule(string name) => _pathsByName.ContainsKey(KernelModuleInfo.NormalizeName(name));

    /// <summary>Parses depmod's modules.dep text (and optionally modules.builtin).</summary>
    /// <exception cref="InvalidDataException">A line is not "path: path path ...".</exception>
    public static KernelModuleGraph FromModulesDep(string modulesDep, string? modulesBuiltin = null)
    {
        ArgumentNullException.ThrowIfNull(modulesDep);
        var paths = new Dictionary<string, string>(StringComparer.Ordinal);
        var depends = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        int lineNumber = 0;
        foreach (string raw in modulesDep.Split('\n'))
        {
            lineNumber++;
            string line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            int colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                throw new InvalidDataException($"modules.dep line {lineNumber}: expected 'module.ko: dependencies', got '{line}'");
            }

            string path = line[..colon].Trim();
            string name = KernelModuleInfo.NameFromPath(path);
            paths[name] = path;
            depends[name] = line[(colon + 1)..]
                .Split(' ', StringSplitOptions.RemoveEmptyEntries)
                .Select(KernelModuleInfo.NameFromPath)
                .ToArray();
        }

        return new KernelModuleGraph(paths, ParseBuiltIn(modulesBuiltin), name => depends.TryGetValue(name, out var d) ? d : []);
    }

    /// <summary>
    /// Indexes an unpacked /lib/modules/&lt;version&gt; directory. Uses its modules.dep when present; otherwise reads
    /// "depends=" from each needed module's .modinfo on demand.
    /// </summary>
    public static KernelModuleGraph FromModuleDirectory(string moduleDirectory)
    {
        string depFile = Path.Combine(moduleDirectory, "modules.dep");
        string builtinFile = Path.Combine(moduleDirectory, "modules.builtin");
        string? builtin = File.Exists(builtinFile) ? File.ReadAllText(builtinFile) : null;
        if (File.Exists(depFile))
        {
            return FromModulesDep(File.ReadAllText(depFile), builtin);
        }

        var paths = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string file in Directory.EnumerateFiles(moduleDirectory, "*.ko*", SearchOption.AllDirectories))
        {
            if (!ModuleFile.IsModuleFileName(file))
            {
                continue;
            }

            string relative = Path.GetRelativePath(moduleDirectory, file).Replace('\\', '/');
            string name = KernelModuleInfo.NameFromPath(relative);

            // Two files with one module name cannot both load; keep the first in a stable (ordinal) order.
            if (!paths.TryGetValue(name, out var existing) || string.CompareOrdinal(relative, existing) < 0)
            {
                paths[name] = relative;
            }
        }

        return new KernelModuleGraph(paths, ParseBuiltIn(builtin), name =>
        {
            string full = Path.Combine(moduleDirectory, paths[name]);
            try
            {
                return KernelModuleInfo.Parse(ModuleFile.ReadAllBytes(full), name).Depends;
            }
            catch (InvalidDataException e)
            {
                throw new InvalidDataException($"{full}: {e.Message}", e);
            }
        });
    }

    /// <summary>
    /// Orders the wanted modules and everything they depend on so that each module comes after its dependencies
    /// (depth-first, post-order, in the order names are given: deterministic).
    /// </summary>
    /// <exception cref="InvalidDataException">The dependencies form a cycle.</exception>
    public ModuleLoadPlan Resolve(IEnumerable<string> wanted)
    {
        ArgumentNullException.ThrowIfNull(wanted);
        var order = new List<KernelModule>();
        var builtIn = new List<string>();
        var missing = new List<string>();
        var done = new HashSet<string>(StringComparer.Ordinal);
        var onPath = new List<string>();

        foreach (string raw in wanted)
        {
            string name = KernelModuleInfo.NormalizeName(raw);
            if (_pathsByName.ContainsKey(name))
            {
                Visit(name, order, done, onPath, missing);
            }
            else if (_builtIn.Contains(name))
            {
                if (!builtIn.Contains(name))
                {
                    builtIn.Add(name);
                }
            }
            else if (!missing.Contains(name))
            {
                missing.Add(name);
            }
        }

        return new ModuleLoadPlan(order, builtIn, missing);
    }

    private void Visit(string name, List<KernelModule> order, HashSet<string> done, List<string> onPath, List<string> missing)
    {
        if (done.Contains(name))
        {
            return;
        }

        if (onPath.Contains(name))
        {
            throw new InvalidDataException($"kernel module dependency cycle: {string.Join(" -> ", onPath)} -> {name}");
        }

        onPath.Add(name);
        var depends = DependsOf(name);
        foreach (string dep in depends)
        {
            if (_pathsByName.ContainsKey(dep))
            {
                Visit(dep, order, done, onPath, missing);
            }
            else if (!_builtIn.Contains(dep) && !missing.Contains($"{dep} (needed by {name})"))
            {
                missing.Add($"{dep} (needed by {name})");
            }
        }

        onPath.RemoveAt(onPath.Count - 1);
        done.Add(name);
        order.Add(new KernelModule(name, _pathsByName[name], depends));
    }

    private IReadOnlyList<string> DependsOf(string name)
    {
        if (!_dependsCache.TryGetValue(name, out var deps))
        {
            deps = _dependsOf(name);
            _dependsCache[name] = deps;
        }

        return deps;
    }

    private static HashSet<string> ParseBuiltIn(string? modulesBuiltin)
    {
        var set = new HashSet<string>(StringComparer.Ordinal);
        if (modulesBuiltin is null)
        {
            return set;
        }

        foreach (string raw in modulesBuiltin.Split('\n'))
        {
            string line = raw.Trim();
            if (line.Length > 0 && !line.StartsWith('#'))
            {
                set.Add(KernelModuleInfo.NameFromPath(line));
            }
        }

        return set;
    }
}
