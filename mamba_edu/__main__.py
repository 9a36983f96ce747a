import sys

from mamba_edu.cli import main

sys.exit(main())
