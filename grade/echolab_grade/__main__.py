import sys

from echolab_grade.cli import main

sys.exit(main())
