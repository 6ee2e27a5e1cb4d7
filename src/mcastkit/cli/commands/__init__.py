"""One module per verb. Each has ``HELP``, ``DESCRIPTION``, ``EXAMPLES``,
``add_arguments(p)`` and ``run(args, env) -> ExitStatus``.
Must not: make socket calls outside the public core.
"""
