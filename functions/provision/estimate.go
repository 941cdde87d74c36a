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
