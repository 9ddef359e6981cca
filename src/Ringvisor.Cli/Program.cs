// ringvisor — the command-line front end. System.CommandLine parses; each command lives in Commands/.
using Ringvisor.Cli.Commands;

return CliApp.Run(args);
