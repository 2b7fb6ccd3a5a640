"""echolab's grader: the lab's checks against a student's one-file echo server (make grade)."""
