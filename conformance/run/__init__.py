"""Running a candidate as an InferenceJob pod runs it: the workspace, staging through the platform's filter, runners (local process, container) and what a run leaves behind."""
