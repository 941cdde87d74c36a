package provision_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/visgate/deployment-orchestrator/functions/provision"
)

// TestJobTimeoutIsTheWorkersTable: the job limit the orchestrator sets
// (VISGATE_JOB_TIMEOUT) is the one the worker applies without it
// (inference/src/visgate_worker/tasks.json), task by task.
func TestJobTimeoutIsTheWorkersTable(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "inference", "src", "visgate_worker", "tasks.json"))
	if err != nil {
		t.Fatal(err)
	}
	var table struct {
		Default int `json:"default_job_timeout_seconds"`
		Tasks   map[string]struct {
			JobTimeoutSeconds int `json:"job_timeout_seconds"`
		} `json:"tasks"`
	}
	if err := json.Unmarshal(b, &table); err != nil {
		t.Fatal(err)
	}
	if len(table.Tasks) == 0 || table.Default <= 0 {
		t.Fatalf("tasks.json: %+v", table)
	}
	for task, spec := range table.Tasks {
		want := spec.JobTimeoutSeconds
		if want == 0 {
			want = table.Default
		}
		if got := provision.JobTimeoutSeconds(task); got != want {
			t.Errorf("JobTimeoutSeconds(%q) = %d, the worker's table says %d", task, got, want)
		}
	}
}
