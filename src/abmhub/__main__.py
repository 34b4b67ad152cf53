from abmhub.cli import main

main()
