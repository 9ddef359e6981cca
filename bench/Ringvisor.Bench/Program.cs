// Placeholder; benchmarks are added per issue.
return 0;
