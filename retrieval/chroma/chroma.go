// Package chroma talks to a Chroma server (the original work's vector
// store) over its HTTP API v2: tenants, databases, collections, adding
// vectors and querying them. Vectors are always given by the caller; the
// server's own embedding functions are not used.
package chroma

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client is a Chroma API v2 client scoped to one tenant and database. It is
// safe for concurrent use.
type Client struct {
	base     string // e.g. http://localhost:8000
	http     *http.Client
	Tenant   string
	Database string
}

// Chroma's defaults, which exist on every fresh server.
const (
	DefaultTenant   = "default_tenant"
	DefaultDatabase = "default_database"
)

// New returns a client for the server at baseURL, on the default tenant and database.
func New(baseURL string) *Client {
	return &Client{base: strings.TrimRight(baseURL, "/"), http: &http.Client{Timeout: 5 * time.Minute},
		Tenant: DefaultTenant, Database: DefaultDatabase}
}

// APIError is an error answer of the server.
type APIError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("chroma %s %s: HTTP %d: %s", e.Method, e.Path, e.Status, e.Body)
}

// do sends a JSON request and decodes a JSON answer into out (may be nil).
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("chroma %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("chroma %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return &APIError{Method: method, Path: path, Status: resp.StatusCode, Body: strings.TrimSpace(string(data))}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("chroma %s %s: bad answer: %w", method, path, err)
		}
	}
	return nil
}

// Heartbeat checks that the server answers.
func (c *Client) Heartbeat(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/api/v2/heartbeat", nil, nil)
}

// EnsureTenant creates the client's tenant unless it exists.
func (c *Client) EnsureTenant(ctx context.Context) error {
	err := c.do(ctx, http.MethodGet, "/api/v2/tenants/"+url.PathEscape(c.Tenant), nil, nil)
	if err == nil {
		return nil
	}
	return c.do(ctx, http.MethodPost, "/api/v2/tenants", map[string]string{"name": c.Tenant}, nil)
}

// EnsureDatabase creates the client's database in its tenant unless it exists.
func (c *Client) EnsureDatabase(ctx context.Context) error {
	err := c.do(ctx, http.MethodGet, c.dbPath(), nil, nil)
	if err == nil {
		return nil
	}
	return c.do(ctx, http.MethodPost, "/api/v2/tenants/"+url.PathEscape(c.Tenant)+"/databases", map[string]string{"name": c.Database}, nil)
}

func (c *Client) dbPath() string {
	return "/api/v2/tenants/" + url.PathEscape(c.Tenant) + "/databases/" + url.PathEscape(c.Database)
}

// Space is a collection's distance function.
type Space string

const (
	Cosine Space = "cosine" // distance 1 - cos(a, b)
	IP     Space = "ip"     // distance 1 - a·b
	L2     Space = "l2"     // squared Euclidean distance
)

// HNSW configures a collection's approximate index. Large EF values make
// small collections search exactly.
type HNSW struct {
	Space          Space `json:"space"`
	EFConstruction int   `json:"ef_construction,omitempty"`
	EFSearch       int   `json:"ef_search,omitempty"`
	MaxNeighbors   int   `json:"max_neighbors,omitempty"`
}

// Collection is a handle on one collection.
type Collection struct {
	c     *Client
	ID    string
	Name  string
	Space Space
}

// GetOrCreateCollection opens the named collection, creating it with cfg
// when it does not exist (an existing collection keeps its configuration).
func (c *Client) GetOrCreateCollection(ctx context.Context, name string, cfg HNSW) (*Collection, error) {
	in := map[string]any{"name": name, "get_or_create": true, "configuration": map[string]any{"hnsw": cfg}}
	var out struct {
		ID            string `json:"id"`
		Name          string `json:"name"`
		Configuration struct {
			HNSW *HNSW `json:"hnsw"`
		} `json:"configuration_json"`
	}
	if err := c.do(ctx, http.MethodPost, c.dbPath()+"/collections", in, &out); err != nil {
		return nil, err
	}
	if out.ID == "" {
		return nil, fmt.Errorf("chroma: create collection %q: no id in the answer", name)
	}
	space := cfg.Space
	if h := out.Configuration.HNSW; h != nil && h.Space != "" {
		space = h.Space
	}
	return &Collection{c: c, ID: out.ID, Name: out.Name, Space: space}, nil
}

// DeleteCollection deletes the named collection.
func (c *Client) DeleteCollection(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, c.dbPath()+"/collections/"+url.PathEscape(name), nil, nil)
}

func (col *Collection) path(op string) string {
	return col.c.dbPath() + "/collections/" + url.PathEscape(col.ID) + "/" + op
}

// AddBatch is how many records one add request carries (Chroma refuses
// very large requests; its default limit is in the thousands).
const AddBatch = 1000

// Add stores vectors (and optional documents, parallel to ids) in batches.
func (col *Collection) Add(ctx context.Context, ids []string, vectors [][]float32, documents []string) error {
	if len(ids) != len(vectors) || (documents != nil && len(documents) != len(ids)) {
		return errors.New("chroma add: ids, vectors and documents must have the same length")
	}
	for lo := 0; lo < len(ids); lo += AddBatch {
		hi := min(lo+AddBatch, len(ids))
		in := map[string]any{"ids": ids[lo:hi], "embeddings": vectors[lo:hi]}
		if documents != nil {
			in["documents"] = documents[lo:hi]
		}
		if err := col.c.do(ctx, http.MethodPost, col.path("add"), in, nil); err != nil {
			return fmt.Errorf("add records %d-%d: %w", lo+1, hi, err)
		}
	}
	return nil
}

// Count returns the number of records in the collection.
func (col *Collection) Count(ctx context.Context) (int, error) {
	var n int
	err := col.c.do(ctx, http.MethodGet, col.path("count"), nil, &n)
	return n, err
}

// Hit is one query result: Chroma's distance, and a similarity score that
// ranks the same way (higher is better): 1 - distance for cosine and ip
// (the cosine, resp. the inner product), -distance for l2.
type Hit struct {
	ID       string
	Distance float32
	Score    float32
}

// Query returns the k nearest records for each query vector, nearest first.
func (col *Collection) Query(ctx context.Context, queries [][]float32, k int) ([][]Hit, error) {
	in := map[string]any{"query_embeddings": queries, "n_results": k, "include": []string{"distances"}}
	var out struct {
		IDs       [][]string  `json:"ids"`
		Distances [][]float32 `json:"distances"`
	}
	if err := col.c.do(ctx, http.MethodPost, col.path("query"), in, &out); err != nil {
		return nil, err
	}
	if len(out.IDs) != len(queries) || len(out.Distances) != len(queries) {
		return nil, fmt.Errorf("chroma query: %d result lists for %d queries", len(out.IDs), len(queries))
	}
	res := make([][]Hit, len(queries))
	for i := range queries {
		if len(out.IDs[i]) != len(out.Distances[i]) {
			return nil, fmt.Errorf("chroma query %d: %d ids for %d distances", i, len(out.IDs[i]), len(out.Distances[i]))
		}
		for j, id := range out.IDs[i] {
			d := out.Distances[i][j]
			s := 1 - d
			if col.Space == L2 {
				s = -d
			}
			res[i] = append(res[i], Hit{ID: id, Distance: d, Score: s})
		}
	}
	return res, nil
}
