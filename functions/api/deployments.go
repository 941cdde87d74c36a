package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/visgate/deployment-orchestrator/shared/deployment"
	"github.com/visgate/deployment-orchestrator/shared/httpx"
	"github.com/visgate/deployment-orchestrator/shared/store"
	"github.com/visgate/deployment-orchestrator/shared/webhook"
)

// owned returns the caller's deployment, or writes the 404 that unknown ids
// and other owners' ids both get.
func (s *Server) owned(w http.ResponseWriter, r *http.Request, owner string) (*deployment.Deployment, bool) {
	id := r.PathValue("id")
	d, err := s.Store.Get(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && d.Owner != owner) {
		httpx.WriteError(w, httpx.NotFound(shorten(id)))
		return nil, false
	}
	if err != nil {
		s.internalError(w, r, "get deployment", err)
		return nil, false
	}
	return d, true
}

func shorten(id string) string {
	if len(id) > 100 {
		return id[:100] + "..."
	}
	return id
}

// get reads the record without copying it (store.View): it only checks its
// owner and looks up (or makes) its encoding, written once the read is done.
func (s *Server) get(w http.ResponseWriter, r *http.Request, owner string) {
	id := r.PathValue("id")
	a := &getAnswer{s: s, owner: owner}
	err := store.View(r.Context(), s.Store, id, a.see)
	body, length, unencodable := a.body, a.length, a.unencodable
	switch {
	case errors.Is(err, store.ErrNotFound):
		httpx.WriteError(w, httpx.NotFound(shorten(id)))
	case err != nil:
		s.internalError(w, r, "get deployment", err)
	case unencodable != nil:
		httpx.WriteJSON(w, http.StatusOK, *unencodable) // its answer to a failed encoding, as before
	case length != nil:
		httpx.WriteEncodedLength(w, http.StatusOK, body, length)
	default:
		httpx.WriteEncoded(w, http.StatusOK, body)
	}
}

// getAnswer is what get's read finds: one allocation for everything the
// read sets (each variable a closure sets was one).
type getAnswer struct {
	s           *Server
	owner       string
	body        []byte
	length      []string           // its Content-Length, when kept
	unencodable *deployment.Public // only when encoding failed
}

// see is get's store.View function.
func (a *getAnswer) see(d *deployment.Deployment) error {
	if d.Owner != a.owner {
		return store.ErrNotFound
	}
	if a.body, a.length = a.s.encoded.answer(d); a.body != nil {
		return nil
	}
	p := d.Public(true) // a copy: usable after View
	var err error
	if a.body, err = httpx.EncodeJSON(p); err != nil {
		a.unencodable = &p
		return nil
	}
	a.s.encoded.put(d, a.body)
	return nil
}

// writeDeployment answers 200 with d.Public(true), encoded once per record
// version (see encodedCache).
func (s *Server) writeDeployment(w http.ResponseWriter, d *deployment.Deployment) {
	if body, length := s.encoded.answer(d); body != nil {
		httpx.WriteEncodedLength(w, http.StatusOK, body, length)
		return
	}
	body, err := httpx.EncodeJSON(d.Public(true))
	if err != nil {
		httpx.WriteJSON(w, http.StatusOK, d.Public(true)) // its answer to a failed encoding, as before
		return
	}
	s.encoded.put(d, body)
	httpx.WriteEncoded(w, http.StatusOK, body)
}

// Page sizes of GET /v1/deployments.
const (
	DefaultPageSize = 20
	MaxPageSize     = 100
)

func (s *Server) list(w http.ResponseWriter, r *http.Request, owner string) {
	q, herr := httpx.Query(r, "limit", "cursor", "status", "include_deleted")
	if herr != nil {
		httpx.WriteError(w, herr)
		return
	}
	errs := httpx.FieldErrors{}
	lq := store.ListQuery{Owner: owner, Limit: DefaultPageSize, Cursor: q.Get("cursor")}
	if q.Has("limit") {
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil || n < 1 || n > MaxPageSize {
			errs.Add("limit", "must be an integer between 1 and 100")
		}
		lq.Limit = n
	}
	includeDeleted := false
	if q.Has("include_deleted") {
		b, err := strconv.ParseBool(q.Get("include_deleted"))
		if err != nil {
			errs.Add("include_deleted", "must be true or false")
		}
		includeDeleted = b
	}
	if q.Has("status") {
		st := deployment.Status(q.Get("status"))
		if !st.Valid() {
			errs.Add("status", "must be one of validating, selecting_gpu, creating_endpoint, downloading_model, loading_model, ready, failed, webhook_failed, deleted")
		}
		lq.Statuses = []deployment.Status{st}
	} else if !includeDeleted {
		for _, st := range deployment.Statuses {
			if st != deployment.StatusDeleted {
				lq.Statuses = append(lq.Statuses, st)
			}
		}
	}
	if q.Has("cursor") && lq.Cursor == "" || len(lq.Cursor) > 512 {
		errs.Add("cursor", "is not a cursor this service returned")
	}
	if e := errs.Err(); e != nil {
		httpx.WriteError(w, e)
		return
	}
	items, next, err := s.Store.List(r.Context(), lq)
	if err != nil {
		if errors.Is(err, store.ErrBadCursor) {
			httpx.WriteError(w, httpx.FieldErrors{"cursor": "is not a cursor this service returned"}.Err())
			return
		}
		s.internalError(w, r, "list deployments", err)
		return
	}
	body, err := s.encodeList(items, next)
	if err != nil {
		httpx.WriteJSON(w, http.StatusOK, listAnswer(items, next)) // its answer to a failed encoding, as before
		return
	}
	httpx.WriteEncoded(w, http.StatusOK, body)
}

// listAnswer is what the list's body encodes.
func listAnswer(items []*deployment.Deployment, next string) map[string]any {
	out := make([]deployment.Public, 0, len(items))
	for _, d := range items {
		out = append(out, d.Public(false))
	}
	var nextCursor *string
	if next != "" {
		nextCursor = &next
	}
	return map[string]any{"deployments": out, "next_cursor": nextCursor}
}

// encodeList is the list's body, the bytes of
// httpx.EncodeJSON(listAnswer(items, next)), assembled from each record's
// encoding, made once per record version (see encodedCache).
func (s *Server) encodeList(items []*deployment.Deployment, next string) ([]byte, error) {
	buf := bytes.NewBuffer(make([]byte, 0, 64+len(items)*2048))
	buf.WriteString(`{"deployments":[`)
	for i, d := range items {
		item := s.listed.get(d)
		if item == nil {
			var err error
			if item, err = json.Marshal(d.Public(false)); err != nil {
				return nil, err
			}
			s.listed.put(d, item)
		}
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(item)
	}
	buf.WriteString(`],"next_cursor":`)
	if next == "" {
		buf.WriteString("null")
	} else {
		c, err := json.Marshal(next)
		if err != nil {
			return nil, err
		}
		buf.Write(c)
	}
	buf.WriteString("}\n")
	return buf.Bytes(), nil
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request, owner string) {
	d, ok := s.owned(w, r, owner)
	if !ok {
		return
	}
	if d.Status != deployment.StatusDeleted {
		now := s.now()
		_, err := s.Store.Update(r.Context(), d.ID, func(d *deployment.Deployment) error {
			if d.Status == deployment.StatusDeleted {
				return store.ErrNoChange
			}
			if err := d.Transition(now, deployment.StatusDeleted); err != nil {
				return err
			}
			d.DeletedReason = deployment.ReasonOwner
			d.Log(now, deployment.LevelInfo, "Deletion requested; tearing the RunPod endpoint down")
			return nil
		})
		if err != nil && !errors.Is(err, store.ErrNoChange) {
			s.internalError(w, r, "delete deployment", err)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) webhookSecret(w http.ResponseWriter, r *http.Request, owner string) {
	httpx.WriteJSON(w, http.StatusOK, map[string]string{
		"webhook_secret": webhook.OwnerSecret(s.SigningKey, owner).Reveal(),
	})
}
