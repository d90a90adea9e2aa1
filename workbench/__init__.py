"""workbench: capture LLM calls, turn user feedback into eval data, calibrate judges, ship golden sets.

    import workbench
    wb = workbench.open()
    client = wb.wrap(OpenAI())
"""

from .capture.wrap import trace_id
from .errors import WorkbenchError
from .models import Candidate, Feedback, Prompt, Trace
from .workbench import Workbench, open

__version__ = "0.1.0"

__all__ = ["Candidate", "Feedback", "Prompt", "Trace", "Workbench", "WorkbenchError", "__version__", "open", "trace_id"]
