package runpodsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// The request bodies are checked the way the openapi schema states them
// (unevaluatedProperties: false, types, minimums, enums); every schema
// violation is collected for a 422 "errors" list, in the style of RunPod's
// example ("$: additional properties 'bogus' not allowed").

type checker struct{ errs []string }

func (c *checker) add(path, format string, args ...any) {
	c.errs = append(c.errs, path+": "+fmt.Sprintf(format, args...))
}

// decodeObject parses a JSON body. A body that is not JSON at all is a 400;
// JSON that is not an object is a schema violation (422).
func decodeObject(body []byte) (map[string]any, *apiError) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, badRequest("request body is not valid JSON: " + err.Error())
	}
	if d.More() {
		return nil, badRequest("request body holds more than one JSON value")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, invalid([]string{"$: expected object"})
	}
	return obj, nil
}

func (c *checker) allowOnly(path string, obj map[string]any, allowed ...string) {
	var extra []string
	for k := range obj {
		if !slices.Contains(allowed, k) {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		c.add(path, "additional properties '%s' not allowed", k)
	}
}

func (c *checker) str(path string, v any, minLen int) (string, bool) {
	s, ok := v.(string)
	if !ok {
		c.add(path, "expected string, got %s", kind(v))
		return "", false
	}
	if len(s) < minLen {
		c.add(path, "length must be >= %d", minLen)
		return "", false
	}
	return s, true
}

func (c *checker) integer(path string, v any, lo, hi int) (int, bool) {
	n, ok := v.(json.Number)
	if !ok {
		c.add(path, "expected integer, got %s", kind(v))
		return 0, false
	}
	i, err := n.Int64()
	if err != nil || i > math.MaxInt32 || i < math.MinInt32 {
		c.add(path, "expected integer, got %s", n.String())
		return 0, false
	}
	if int(i) < lo {
		c.add(path, "must be >= %d", lo)
		return 0, false
	}
	if int(i) > hi {
		c.add(path, "must be <= %d", hi)
		return 0, false
	}
	return int(i), true
}

func (c *checker) number(path string, v any, lo float64) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		c.add(path, "expected number, got %s", kind(v))
		return 0, false
	}
	f, err := n.Float64()
	if err != nil {
		c.add(path, "expected number, got %s", n.String())
		return 0, false
	}
	if f < lo {
		c.add(path, "must be >= %v", lo)
		return 0, false
	}
	return f, true
}

func (c *checker) object(path string, v any) (map[string]any, bool) {
	o, ok := v.(map[string]any)
	if !ok {
		c.add(path, "expected object, got %s", kind(v))
	}
	return o, ok
}

func (c *checker) strings(path string, v any, minItems int, pattern *regexp.Regexp) ([]string, bool) {
	arr, ok := v.([]any)
	if !ok {
		c.add(path, "expected array, got %s", kind(v))
		return nil, false
	}
	if len(arr) < minItems {
		c.add(path, "minimum %d items required, but found %d items", minItems, len(arr))
		return nil, false
	}
	out := make([]string, 0, len(arr))
	good := true
	for i, item := range arr {
		s, ok := item.(string)
		if !ok {
			c.add(fmt.Sprintf("%s[%d]", path, i), "expected string, got %s", kind(item))
			good = false
			continue
		}
		if pattern != nil && !pattern.MatchString(s) {
			c.add(fmt.Sprintf("%s[%d]", path, i), "does not match pattern '%s'", pattern)
			good = false
			continue
		}
		out = append(out, s)
	}
	return out, good
}

func (c *checker) enum(path string, v any, values ...string) (string, bool) {
	s, ok := v.(string)
	if !ok || !slices.Contains(values, s) {
		c.add(path, "value must be one of %s", quoteAll(values))
		return "", false
	}
	return s, true
}

func (c *checker) stringMap(path string, v any) (map[string]string, bool) {
	o, ok := c.object(path, v)
	if !ok {
		return nil, false
	}
	out := make(map[string]string, len(o))
	good := true
	for k, val := range o {
		s, ok := val.(string)
		if !ok {
			c.add(path+"."+k, "expected string, got %s", kind(val))
			good = false
			continue
		}
		out[k] = s
	}
	return out, good
}

func quoteAll(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = "'" + v + "'"
	}
	return strings.Join(q, ", ")
}

func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

var cudaPattern = regexp.MustCompile(`^\d+\.\d+$`)
var excludedPattern = regexp.MustCompile(`^\s*[^-\s]`)

// containerKeys are ContainerConfig's properties, allowed in both bodies.
var containerKeys = []string{"args", "disk", "env", "image", "ports", "registry"}

// body is a create or update request after the schema check; nil pointers
// and slices are fields that were absent.
type body struct {
	name, typ, image, templateID, args *string
	registry                           *string
	registrySet                        bool
	disk, timeout                      *int
	env                                map[string]string
	ports, dataCenterIDs, netVolumes   []string
	portsSet, dcSet, nvSet             bool
	flashboot                          *string

	gpuSet                bool
	pools, excluded       []string
	poolsSet, excludedSet bool
	gpuCount              *int
	cudaVersions          []string
	cudaSet               bool
	minCuda               *string
	cpuSet                bool
	cpu                   []cpuConfig
	workersSet            bool
	wMin, wMax, wIdle     *int
	scalingSet            bool
	scalingType           string
	queueDelay            float64
	requestCount          int
}

// parseBody checks obj against CreateEndpointRequest (create) or
// UpdateEndpointRequest (!create).
func parseBody(obj map[string]any, create bool) (*body, []string) {
	c := &checker{}
	b := &body{}
	allowed := append(slices.Clone(containerKeys), "cpu", "dataCenterIds", "flashboot", "gpu",
		"name", "networkVolumes", "scaling", "templateId", "timeout", "workers")
	if create {
		allowed = append(allowed, "type")
		for _, k := range []string{"name", "type", "scaling"} {
			if _, ok := obj[k]; !ok {
				c.add("$", "missing property '%s'", k)
			}
		}
		_, hasImage := obj["image"]
		_, hasTemplate := obj["templateId"]
		if !hasImage && !hasTemplate {
			c.add("$", "missing property 'image'")
		}
	}
	c.allowOnly("$", obj, allowed...)

	setStr := func(key string, minLen int) *string {
		if v, ok := obj[key]; ok {
			if s, ok := c.str("$."+key, v, minLen); ok {
				return &s
			}
		}
		return nil
	}
	b.name = setStr("name", 1)
	b.image = setStr("image", 0)
	b.args = setStr("args", 0)
	b.templateID = setStr("templateId", 1)
	if v, ok := obj["type"]; ok {
		if s, ok := c.enum("$.type", v, "QUEUE", "LOAD_BALANCER"); ok {
			b.typ = &s
		}
	}
	if v, ok := obj["registry"]; ok {
		b.registrySet = true
		if v != nil {
			if s, ok := c.str("$.registry", v, 0); ok {
				b.registry = &s
			}
		}
	}
	if v, ok := obj["disk"]; ok {
		if n, ok := c.integer("$.disk", v, 1, math.MaxInt32); ok {
			b.disk = &n
		}
	}
	if v, ok := obj["timeout"]; ok {
		if n, ok := c.integer("$.timeout", v, math.MinInt32, math.MaxInt32); ok {
			b.timeout = &n
		}
	}
	if v, ok := obj["env"]; ok {
		b.env, _ = c.stringMap("$.env", v)
		if b.env == nil {
			b.env = map[string]string{}
		}
	}
	if v, ok := obj["ports"]; ok {
		b.portsSet = true
		b.ports, _ = c.strings("$.ports", v, 0, nil)
	}
	if v, ok := obj["dataCenterIds"]; ok {
		b.dcSet = true
		b.dataCenterIDs, _ = c.strings("$.dataCenterIds", v, 0, nil)
	}
	if v, ok := obj["networkVolumes"]; ok {
		b.nvSet = true
		b.netVolumes, _ = c.strings("$.networkVolumes", v, 0, nil)
	}
	if v, ok := obj["flashboot"]; ok {
		if s, ok := c.enum("$.flashboot", v, "OFF", "FLASHBOOT", "PRIORITY_FLASHBOOT"); ok {
			b.flashboot = &s
		}
	}
	if v, ok := obj["gpu"]; ok {
		b.gpuSet = true
		parseGPU(c, b, v, create)
	}
	if v, ok := obj["cpu"]; ok {
		b.cpuSet = true
		parseCPU(c, b, v)
	}
	if v, ok := obj["workers"]; ok {
		b.workersSet = true
		if w, ok := c.object("$.workers", v); ok {
			c.allowOnly("$.workers", w, "min", "max", "idleTimeout")
			if x, ok := w["min"]; ok {
				if n, ok := c.integer("$.workers.min", x, 0, math.MaxInt32); ok {
					b.wMin = &n
				}
			}
			if x, ok := w["max"]; ok {
				if n, ok := c.integer("$.workers.max", x, 0, math.MaxInt32); ok {
					b.wMax = &n
				}
			}
			if x, ok := w["idleTimeout"]; ok {
				if n, ok := c.integer("$.workers.idleTimeout", x, 1, 3600); ok {
					b.wIdle = &n
				}
			}
		}
	}
	if v, ok := obj["scaling"]; ok {
		b.scalingSet = true
		parseScaling(c, b, v)
	}
	if create && b.typ != nil && *b.typ == "LOAD_BALANCER" && b.scalingSet && b.scalingType == "QUEUE_DELAY" {
		c.add("$.scaling.type", "value must be 'REQUEST_COUNT' for a LOAD_BALANCER endpoint")
	}
	return b, c.errs
}

func parseGPU(c *checker, b *body, v any, create bool) {
	g, ok := c.object("$.gpu", v)
	if !ok {
		return
	}
	c.allowOnly("$.gpu", g, "pools", "excludedTypes", "count", "allowedCudaVersions", "minCudaVersion")
	if x, ok := g["pools"]; ok {
		b.poolsSet = true
		b.pools, _ = c.strings("$.gpu.pools", x, 1, nil)
	} else if create {
		c.add("$.gpu", "missing property 'pools'")
	}
	if x, ok := g["excludedTypes"]; ok {
		b.excludedSet = true
		if ex, ok := c.strings("$.gpu.excludedTypes", x, 0, excludedPattern); ok {
			for i := range ex {
				ex[i] = strings.TrimSpace(ex[i])
			}
			seen := map[string]bool{}
			for _, t := range ex {
				if seen[t] {
					c.add("$.gpu.excludedTypes", "items must be unique")
					break
				}
				seen[t] = true
			}
			b.excluded = ex
		}
		if !create && !b.poolsSet {
			c.add("$.gpu", "property 'excludedTypes' requires property 'pools'")
		}
	}
	if x, ok := g["count"]; ok {
		if n, ok := c.integer("$.gpu.count", x, 1, math.MaxInt32); ok {
			b.gpuCount = &n
		}
	}
	if x, ok := g["allowedCudaVersions"]; ok {
		b.cudaSet = true
		b.cudaVersions, _ = c.strings("$.gpu.allowedCudaVersions", x, 0, cudaPattern)
	}
	if x, ok := g["minCudaVersion"]; ok {
		if s, ok := c.str("$.gpu.minCudaVersion", x, 0); ok {
			if s == "" && !create {
				b.minCuda = &s
			} else if !cudaPattern.MatchString(s) {
				c.add("$.gpu.minCudaVersion", "does not match pattern '%s'", cudaPattern)
			} else {
				b.minCuda = &s
			}
		}
	}
}

func parseCPU(c *checker, b *body, v any) {
	arr, ok := v.([]any)
	if !ok {
		c.add("$.cpu", "expected array, got %s", kind(v))
		return
	}
	if len(arr) < 1 {
		c.add("$.cpu", "minimum 1 items required, but found 0 items")
		return
	}
	seen := map[cpuConfig]bool{}
	for i, item := range arr {
		path := fmt.Sprintf("$.cpu[%d]", i)
		o, ok := c.object(path, item)
		if !ok {
			continue
		}
		c.allowOnly(path, o, "id", "vcpuCount")
		var cfg cpuConfig
		if x, ok := o["id"]; ok {
			cfg.ID, _ = c.str(path+".id", x, 1)
		} else {
			c.add(path, "missing property 'id'")
		}
		if x, ok := o["vcpuCount"]; ok {
			cfg.VCPUCount, _ = c.integer(path+".vcpuCount", x, 2, math.MaxInt32)
		} else {
			c.add(path, "missing property 'vcpuCount'")
		}
		if seen[cfg] {
			c.add("$.cpu", "items must be unique")
		}
		seen[cfg] = true
		cfg.Memory = cfg.VCPUCount * 4
		b.cpu = append(b.cpu, cfg)
	}
}

func parseScaling(c *checker, b *body, v any) {
	s, ok := c.object("$.scaling", v)
	if !ok {
		return
	}
	t, ok := c.enum("$.scaling.type", s["type"], "QUEUE_DELAY", "REQUEST_COUNT")
	if !ok {
		return
	}
	b.scalingType = t
	switch t {
	case "QUEUE_DELAY":
		c.allowOnly("$.scaling", s, "type", "queueDelay")
		if x, ok := s["queueDelay"]; ok {
			b.queueDelay, _ = c.number("$.scaling.queueDelay", x, 0.5)
		} else {
			c.add("$.scaling", "missing property 'queueDelay'")
		}
	case "REQUEST_COUNT":
		c.allowOnly("$.scaling", s, "type", "requestCount")
		if x, ok := s["requestCount"]; ok {
			b.requestCount, _ = c.integer("$.scaling.requestCount", x, 1, math.MaxInt32)
		} else {
			c.add("$.scaling", "missing property 'requestCount'")
		}
	}
}
