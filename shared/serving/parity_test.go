package serving

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// workerTasks is the inference worker's table of the tasks it serves
// (inference/src/visgate_worker/tasks.json), as far as Go reads it.
type workerTasks struct {
	DefaultJobTimeoutSeconds int `json:"default_job_timeout_seconds"`
	Tasks                    map[string]struct {
		Libraries         map[string]string `json:"libraries"` // library → the worker's loader
		JobTimeoutSeconds int               `json:"job_timeout_seconds"`
	} `json:"tasks"`
}

// TestServedIsTheWorkersTable: the tasks and libraries the orchestrator
// sends to the inference worker are the ones the worker's table says it
// serves, no more and no fewer.
func TestServedIsTheWorkersTable(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "inference", "src", "visgate_worker", "tasks.json"))
	if err != nil {
		t.Fatal(err)
	}
	var table workerTasks
	if err := json.Unmarshal(b, &table); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{}
	for task, spec := range table.Tasks {
		for lib := range spec.Libraries {
			want[task] = append(want[task], lib)
		}
	}
	got := map[string][]string{}
	for task, libs := range served {
		got[task] = slices.Clone(libs)
	}
	sorted := cmp.Transformer("sorted", func(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s })
	if diff := cmp.Diff(want, got, sorted); diff != "" {
		t.Errorf("serving's tasks and libraries (+) against the worker's tasks.json (-):\n%s", diff)
	}
	for task := range table.Tasks {
		if textGeneration[task] {
			t.Errorf("%s is both vLLM's and the inference worker's", task)
		}
	}
}
