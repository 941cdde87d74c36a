package provision

import "strings"

// EstimateReadySeconds estimates the time from endpoint creation to a loaded
// model: a cold start (image pull, worker boot), the download at a
// conservative 100 MB/s, and moving the weights into GPU memory at a rate
// that depends on the GPU's generation (pool ""—not chosen yet—counts as the
// slowest).
func EstimateReadySeconds(downloadBytes int64, vramGB int, pool string) int {
	const coldStart = 90
	download := int(downloadBytes / (100 << 20))
	return coldStart + download + int(float64(vramGB)*loadSecondsPerGB(pool)+0.5)
}

// loadSecondsPerGB: reading safetensors from local disk into GPU memory,
// bounded by the host's disk and PCIe (Gen4 on Ampere and Ada, Gen5 on
// Hopper and Blackwell hosts).
func loadSecondsPerGB(pool string) float64 {
	switch {
	case strings.HasPrefix(pool, "HOPPER"), strings.HasPrefix(pool, "BLACKWELL"):
		return 1
	case strings.HasPrefix(pool, "ADA"):
		return 1.5
	}
	return 2
}

// JobTimeoutSeconds is the inference worker's wall-clock limit for one job of
// task (VISGATE_JOB_TIMEOUT; the worker's own default, in its table
// inference/src/visgate_worker/tasks.json, is the same, and a test holds
// them together): ten minutes for images and speech, two for the text and
// image-classification tasks.
func JobTimeoutSeconds(task string) int {
	switch task {
	case "text-to-image", "automatic-speech-recognition":
		return 600
	}
	return 120
}

// ExecutionTimeoutMs is the endpoint's executionTimeoutMs for the inference
// worker's task: RunPod stops a job that runs longer. A minute above the
// worker's own limit, so the worker's sentence is what the user sees.
func ExecutionTimeoutMs(task string) int {
	return (JobTimeoutSeconds(task) + 60) * 1000
}

// InitTimeoutSeconds is RUNPOD_INIT_TIMEOUT for a worker that downloads
// downloadBytes and loads vramGB of weights: how long RunPod lets a worker
// start (download, load, warm-up) before it marks it unhealthy and starts
// another. RunPod's default, 7 minutes, cannot fit FLUX.1-schnell's ~34 GB,
// whose worker would download again in a loop. This allows the download at
// a slow 25 MB/s (a quarter of EstimateReadySeconds' rate), twice the
// slowest load, and 10 minutes for the image pull and the rest; never
// less than 15 minutes.
func InitTimeoutSeconds(downloadBytes int64, vramGB int) int {
	const rest, floor = 600, 900
	download := int((downloadBytes + 25e6 - 1) / 25e6)
	load := int(2 * float64(vramGB) * loadSecondsPerGB(""))
	return max(floor, rest+download+load)
}
