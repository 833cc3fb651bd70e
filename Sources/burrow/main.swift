import BurrowCLI

Entry.burrow()
