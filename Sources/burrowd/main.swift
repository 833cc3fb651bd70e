import BurrowCLI

Entry.burrowd()
