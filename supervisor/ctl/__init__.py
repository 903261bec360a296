"""`routerctl`: the operator's command line for a running routerd."""
