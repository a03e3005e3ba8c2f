"""Running a candidate as an InferenceJob pod runs it: the workspace, staging through the platform's filter, runners (local process, container) and what a run leaves behind."""

#: Seconds a predictor run may take unless --run-timeout says otherwise (here so front ends need not import the
#: runners to show it).
DEFAULT_TIMEOUT = 60.0
