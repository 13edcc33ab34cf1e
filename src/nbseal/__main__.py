from nbseal.cli import main

raise SystemExit(main())
