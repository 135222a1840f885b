from starter.api.server import main

main()
