from kubehop.cli.app import main

main()
