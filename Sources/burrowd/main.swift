import BurrowDaemon

await DaemonEntry.main()
