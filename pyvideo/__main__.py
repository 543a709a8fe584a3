from pyvideo.cli import main

raise SystemExit(main())
