// Placeholder entry point; the System.CommandLine surface is built in Cli/Commands.
return 0;
