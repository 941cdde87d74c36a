"""The Deployment Orchestrator's inference worker (RunPod serverless).

Start-up: read the endpoint's env (config), download the chosen files
(download), load the model for its task (loaders), run one warm-up
inference, report each phase to the orchestrator (callback), then serve jobs
through runpod.serverless.start (handler). See docs/worker.md.
"""
