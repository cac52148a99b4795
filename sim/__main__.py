from sim.cli import module_main

module_main()
