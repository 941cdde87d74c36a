package deploycheck

import (
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// storageReadRoles let a member read a bucket's objects (granted on the
// project without a condition: every bucket's).
var storageReadRoles = map[string]bool{"roles/storage.objectViewer": true, "roles/storage.objectAdmin": true, "roles/storage.admin": true}

// CheckFirstApply checks what a first `terraform apply` and its later
// updates need beyond the functions' wiring: that builds can read their
// source and wait for IAM to settle, that the data's key outlives a
// destroy, that the URL check reads every URL of a service, that Eventarc
// can mint tokens, that old archives and images do not pile up, that the
// load balancer keeps a certificate and redirects HTTP, and that adding an
// API does not redeploy every function.
func CheckFirstApply(m *Module, fns []*Function) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	// Project-wide grants by member, with their conditions.
	grants := map[string]map[string]string{} // member => role => resource name
	conditions := map[string]string{}        // resource name => condition expression
	iam, err := m.Instances("google_project_iam_member")
	if err != nil {
		return []error{err}
	}
	for _, in := range iam {
		role, _ := stringAttr(in, "role")
		member, _ := stringAttr(in, "member")
		if grants[member] == nil {
			grants[member] = map[string]string{}
		}
		grants[member][role] = in.Name
		if v, _, err := Nested(in.Body, in.Ctx, "condition", "expression"); err == nil {
			if e, ok := KnownString(v); ok {
				conditions[in.Name] = e
			}
		}
	}
	// Bucket grants: bucket => member => resource name.
	bucketReaders := map[string]map[string]string{}
	bucketIAM, err := m.Instances("google_storage_bucket_iam_member")
	if err != nil {
		return []error{err}
	}
	for _, in := range bucketIAM {
		role, _ := stringAttr(in, "role")
		member, _ := stringAttr(in, "member")
		bucket, _ := stringAttr(in, "bucket")
		if !storageReadRoles[role] {
			continue
		}
		if bucketReaders[bucket] == nil {
			bucketReaders[bucket] = map[string]string{}
		}
		bucketReaders[bucket][member] = "google_storage_bucket_iam_member." + in.Name
	}

	// 1. The build account reads the source where Cloud Build reads it, and
	// the functions wait for that grant to propagate.
	sas, err := m.Instances("google_service_account")
	if err != nil {
		return []error{err}
	}
	memberOf := map[string]string{} // id => member
	for _, in := range sas {
		obj, ok := saValue(m, in)
		if ok {
			memberOf[obj[0]] = obj[1]
		}
	}
	sleeps := map[string][]string{} // time_sleep name => its depends_on
	for _, blk := range m.blocks("resource") {
		if blk.Labels[0] == "time_sleep" {
			sleeps[blk.Labels[1]] = DependsOn(blk.Body)
		}
	}
	for _, f := range fns {
		member := memberOf[f.BuildServiceAccount]
		if member == "" {
			fail("%s: build_config.service_account %q is no google_service_account of the configuration", f.Address, f.BuildServiceAccount)
			continue
		}
		// The grants the build needs: its source bucket, and Google's
		// gcf-v2-sources-PROJECT_NUMBER-REGION (through a condition naming
		// it: the bucket exists only once the first function does).
		var needed []string
		gcf := "gcf-v2-sources-" + ProjectNumber + "-" + f.Location
		gcfRes := ""
		for role, res := range grants[member] {
			if !storageReadRoles[role] {
				continue
			}
			cond, conditional := conditions[res]
			switch {
			case !conditional:
				fail("%s: its build account %s may read every bucket of the project (%s on the project, google_project_iam_member.%s): grant it on the source bucket (google_storage_bucket_iam_member) and on %s through a condition", f.Address, member, role, res, gcf)
				gcfRes = "google_project_iam_member." + res
			case strings.Contains(cond, `"projects/_/buckets/`+gcf+`"`) && strings.Contains(cond, `"projects/_/buckets/`+gcf+`/"`):
				gcfRes = "google_project_iam_member." + res
			}
		}
		if gcfRes == "" {
			fail("%s: its build account %s cannot read Google's %s bucket, where Cloud Build reads the source (terraform-provider-google#20571): grant roles/storage.objectViewer on the project with a condition on resource.name naming projects/_/buckets/%s and its objects", f.Address, member, gcf, gcf)
			continue
		}
		needed = append(needed, gcfRes)
		if f.SourceBucket == "" {
			fail("%s: build_config.source.storage_source.bucket is not known offline", f.Address)
		} else if res := bucketReaders[f.SourceBucket][member]; res != "" {
			needed = append(needed, res)
		} else {
			fail("%s: its build account %s cannot read the source bucket %s: grant roles/storage.objectViewer on it (google_storage_bucket_iam_member)", f.Address, member, f.SourceBucket)
		}
		for _, grantRes := range needed {
			waits := false
			for _, d := range f.DependsOn {
				name, ok := strings.CutPrefix(d, "time_sleep.")
				if !ok {
					continue
				}
				for _, dd := range sleeps[name] {
					waits = waits || dd == grantRes
				}
			}
			if !waits {
				fail("%s: does not wait for its build account's grant (%s) to propagate: depend on a time_sleep after it", f.Address, grantRes)
			}
		}
	}

	// 2. The key that seals the kept data is kept too.
	for _, typ := range []string{"google_kms_key_ring", "google_kms_crypto_key"} {
		for _, blk := range m.blocks("resource") {
			if blk.Labels[0] == typ && !lifecycleFlag(blk.Body, "prevent_destroy") {
				fail("%s.%s: no lifecycle prevent_destroy: a destroy keeps Firestore's data but schedules the key that opens its secrets for destruction", typ, blk.Labels[1])
			}
		}
	}

	// 3. The URL check compares with every URL of the service.
	readsURLs := false
	for _, b := range m.bodies {
		for _, chk := range b.Blocks {
			if chk.Type != "check" {
				continue
			}
			for _, as := range chk.Body.Blocks {
				if as.Type != "assert" {
					continue
				}
				if c, ok := as.Body.Attributes["condition"]; ok && readsAttr(c.Expr, "data", "google_cloud_run_v2_service", "urls") {
					readsURLs = true
				}
			}
		}
	}
	if !readsURLs {
		fail("no check compares the deterministic URLs with a google_cloud_run_v2_service's urls (service_config[0].uri may be the hash URL)")
	}

	// 4. The Pub/Sub service agent may mint tokens (agents created before
	// 8 April 2021 lack it; Eventarc's roles page).
	pubsub := "serviceAccount:service-" + ProjectNumber + "@gcp-sa-pubsub.iam.gserviceaccount.com"
	if grants[pubsub]["roles/iam.serviceAccountTokenCreator"] == "" {
		fail("the Pub/Sub service agent (%s) lacks roles/iam.serviceAccountTokenCreator", pubsub)
	}

	// 5. Old source archives and function images do not pile up.
	for _, f := range fns {
		in := instanceOf(m, f)
		if in == nil {
			continue
		}
		bcs, _ := Blocks(in.Body, in.Ctx, "build_config")
		for _, bc := range bcs {
			srcs, _ := Blocks(bc.Body, bc.Ctx, "source")
			for _, src := range srcs {
				ss, _ := Blocks(src.Body, src.Ctx, "storage_source")
				for _, s := range ss {
					refs, _ := Refs(s.Body, s.Ctx, "bucket", "google_storage_bucket")
					for _, r := range refs {
						name := strings.SplitN(r, "|", 2)[0]
						if blk := m.Block("resource", "google_storage_bucket", name); blk != nil && !softDeleteOff(blk) {
							fail("google_storage_bucket.%s: keeps every replaced source archive (soft delete): set soft_delete_policy retention_duration_seconds = 0", name)
						}
					}
				}
			}
			refs, _ := Refs(bc.Body, bc.Ctx, "docker_repository", "google_artifact_registry_repository")
			if len(refs) == 0 {
				fail("%s: build_config.docker_repository unset: every build's image piles up in gcf-artifacts", f.Address)
			}
			for _, r := range refs {
				name := strings.SplitN(r, "|", 2)[0]
				if blk := m.Block("resource", "google_artifact_registry_repository", name); blk != nil && !hasDeletePolicy(blk) {
					fail("google_artifact_registry_repository.%s: no DELETE cleanup policy: every build's image piles up", name)
				}
			}
		}
	}

	// 6. The load balancer: a new certificate before the old goes, and
	// plain HTTP redirected.
	certs, err := m.Instances("google_compute_managed_ssl_certificate")
	if err != nil {
		return append(errs, err)
	}
	for _, in := range certs {
		if !lifecycleFlag(in.Body, "create_before_destroy") {
			fail("%s: no create_before_destroy: changing the domain deletes the certificate the HTTPS proxy uses", in.Address())
		}
		if a, ok := in.Body.Attributes["name"]; !ok || !readsAttr(a.Expr, "var", "domain", "") {
			fail("%s: its name does not change with the domain, so create_before_destroy cannot create the new one beside the old", in.Address())
		}
	}
	if len(certs) > 0 && !redirectsHTTP(m) {
		fail("the load balancer does not redirect http:// to https:// (a port 80 forwarding rule to a url map with https_redirect)")
	}

	// 7. The data can be restored: point-in-time recovery and a daily
	// backup schedule on every database.
	errs = append(errs, checkRestorable(m)...)

	// 8. The project number is read at plan time even when an API is added.
	for _, blk := range m.blocks("data") {
		if blk.Labels[0] != "google_project" {
			continue
		}
		for _, d := range m.dependsOnForEach(blk) {
			fail("data.google_project.%s depends on %s (the API list): adding an API defers reading the project number to apply time, and every function's environment (its URLs) becomes unknown and is redeployed", blk.Labels[1], d)
		}
	}
	return errs
}

// saValue returns a service account's id and member when known.
func saValue(m *Module, in Instance) ([2]string, bool) {
	sa := m.ctx.Variables["google_service_account"]
	if !sa.Type().IsObjectType() || !sa.Type().HasAttribute(in.Name) {
		return [2]string{}, false
	}
	v := sa.GetAttr(in.Name)
	if in.Key != cty.NilVal {
		if !v.Type().IsObjectType() || !v.Type().HasAttribute(in.Key.AsString()) {
			return [2]string{}, false
		}
		v = v.GetAttr(in.Key.AsString())
	}
	id, ok1 := KnownString(v.GetAttr("id"))
	member, ok2 := KnownString(v.GetAttr("member"))
	return [2]string{id, member}, ok1 && ok2
}

func instanceOf(m *Module, f *Function) *Instance {
	insts, err := m.Instances(FunctionType)
	if err != nil {
		return nil
	}
	for _, in := range insts {
		if in.Address() == f.Address {
			return &in
		}
	}
	return nil
}

func softDeleteOff(blk *hclsyntax.Block) bool {
	for _, b := range blk.Body.Blocks {
		if b.Type != "soft_delete_policy" {
			continue
		}
		if a, ok := b.Body.Attributes["retention_duration_seconds"]; ok {
			v, diags := a.Expr.Value(nil)
			if !diags.HasErrors() && v.IsKnown() && !v.IsNull() && v.AsBigFloat().Sign() == 0 {
				return true
			}
		}
	}
	return false
}

func hasDeletePolicy(blk *hclsyntax.Block) bool {
	for _, b := range blk.Body.Blocks {
		if b.Type != "cleanup_policies" {
			continue
		}
		if a, ok := b.Body.Attributes["action"]; ok {
			v, diags := a.Expr.Value(nil)
			if s, known := KnownString(v); !diags.HasErrors() && known && s == "DELETE" {
				return true
			}
		}
	}
	return false
}

// redirectsHTTP: a forwarding rule on port 80 targets an HTTP proxy whose
// URL map redirects to HTTPS.
func redirectsHTTP(m *Module) bool {
	rules, _ := m.Instances("google_compute_global_forwarding_rule")
	for _, in := range rules {
		if p, _ := stringAttr(in, "port_range"); p != "80" && p != "80-80" {
			continue
		}
		proxies, _ := Refs(in.Body, in.Ctx, "target", "google_compute_target_http_proxy")
		for _, p := range proxies {
			pblk := m.Block("resource", "google_compute_target_http_proxy", strings.SplitN(p, "|", 2)[0])
			if pblk == nil {
				continue
			}
			maps, _ := Refs(pblk.Body, m.ctx, "url_map", "google_compute_url_map")
			for _, um := range maps {
				ublk := m.Block("resource", "google_compute_url_map", strings.SplitN(um, "|", 2)[0])
				if ublk == nil {
					continue
				}
				for _, b := range ublk.Body.Blocks {
					if b.Type != "default_url_redirect" {
						continue
					}
					if a, ok := b.Body.Attributes["https_redirect"]; ok {
						v, diags := a.Expr.Value(nil)
						if !diags.HasErrors() && v.True() {
							return true
						}
					}
				}
			}
		}
	}
	return false
}

// readsAttr tells whether expr reads ROOT.NAME and, unless attr is "",
// reads an attribute attr (of it, or of an iterator over it, as in
// `for k, svc in ROOT.NAME : svc.attr`).
func readsAttr(expr hclsyntax.Expression, root, name, attr string) bool {
	refs, reads := false, attr == ""
	_ = hclsyntax.VisitAll(expr, func(n hclsyntax.Node) hcl.Diagnostics {
		var tr hcl.Traversal
		switch x := n.(type) {
		case *hclsyntax.ScopeTraversalExpr:
			tr = x.Traversal
			if tr.RootName() == root && len(tr) >= 2 {
				if a, ok := tr[1].(hcl.TraverseAttr); ok && a.Name == name {
					refs = true
				}
			}
		case *hclsyntax.RelativeTraversalExpr:
			tr = x.Traversal
		default:
			return nil
		}
		for _, step := range tr {
			if a, ok := step.(hcl.TraverseAttr); ok && a.Name == attr {
				reads = true
			}
		}
		return nil
	})
	return refs && reads
}

// Firestore's longest backup retentions: 7 days for a daily schedule, 14
// weeks for a weekly one.
const (
	maxDailyRetention  = 7 * 24 * time.Hour
	maxWeeklyRetention = 14 * 7 * 24 * time.Hour
)

// checkRestorable: every Firestore database keeps 7 days of versions
// (point-in-time recovery) and has a daily backup schedule whose retention
// Firestore accepts.
func checkRestorable(m *Module) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	dbs, err := m.Instances("google_firestore_database")
	if err != nil {
		return []error{err}
	}
	scheds, err := m.Instances("google_firestore_backup_schedule")
	if err != nil {
		return []error{err}
	}
	daily := map[string]bool{} // database name => a valid daily schedule
	for _, in := range scheds {
		db, _ := stringAttr(in, "database")
		rec, _ := Blocks(in.Body, in.Ctx, "daily_recurrence")
		weekly, _ := Blocks(in.Body, in.Ctx, "weekly_recurrence")
		limit, kind := maxDailyRetention, "daily"
		switch {
		case len(rec) == 0 && len(weekly) == 0:
			fail("%s: neither daily_recurrence nor weekly_recurrence", in.Address())
			continue
		case len(rec) == 0:
			limit, kind = maxWeeklyRetention, "weekly"
		}
		r, known := stringAttr(in, "retention")
		d, perr := time.ParseDuration(r)
		switch {
		case !known:
			fail("%s: retention not known offline", in.Address())
			continue
		case perr != nil || !strings.HasSuffix(r, "s"):
			fail("%s: retention %q is not a duration in seconds such as \"1209600s\"", in.Address(), r)
			continue
		case d < 24*time.Hour || d > limit:
			fail("%s: retention %s: Firestore keeps a %s backup from 1 day to %s", in.Address(), r, kind, map[string]string{"daily": "7 days", "weekly": "14 weeks"}[kind])
			continue
		}
		if kind == "daily" {
			daily[db] = true
		}
	}
	for _, in := range dbs {
		name, _ := stringAttr(in, "name")
		if v, _ := stringAttr(in, "point_in_time_recovery_enablement"); v != "POINT_IN_TIME_RECOVERY_ENABLED" {
			fail("%s: point_in_time_recovery_enablement %q: without POINT_IN_TIME_RECOVERY_ENABLED a bad write or delete cannot be read back as of a minute before it", in.Address(), v)
		}
		if !daily[name] {
			fail("%s: no google_firestore_backup_schedule with daily_recurrence backs up database %q", in.Address(), name)
		}
	}
	return errs
}
