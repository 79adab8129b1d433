"""The one base class of every error a user can cause (bad params, bad files, missing weights).

Commands catch :class:`PipelineError` and print its message as one line; any
other exception is a bug and keeps its traceback.
"""


class PipelineError(Exception):
    """An error whose message is one line naming the file or parameter at fault."""
