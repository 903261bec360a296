from supervisor.ctl.cli import main

main()
