package remote

import (
	"sync"
	"sync/atomic"

	ggcr "github.com/google/go-containerregistry/pkg/v1/remote"
)

// clientRepos is how many repositories one generation of clients serves before the next.
const clientRepos = 256

// clients hands out go-containerregistry's Puller and Pusher. Each keeps, for its lifetime, a
// reader or writer (transport, token, scopes) for every repository it has been used on: one
// pair for a whole release would hold one for each of its repositories, thousands of them
// (a push of 20,000 tags grew by 3.6 KB an image, #19). So the pair is made again every
// clientRepos repositories; a generation let go is freed once the requests that took it end.
// A repository met again after its generation costs one more token and ping.
type clients struct {
	make func() (*clientGen, error)
	cur  atomic.Pointer[clientGen]
	mu   sync.Mutex // held while a generation is replaced
}

// clientGen is one generation: the clients and the repositories they have served.
type clientGen struct {
	puller *ggcr.Puller
	pusher *ggcr.Pusher
	mu     sync.Mutex
	repos  map[string]bool
}

// newClients makes the first generation with mk, which makes each.
func newClients(mk func() (*clientGen, error)) (*clients, error) {
	g, err := mk()
	if err != nil {
		return nil, err
	}
	c := &clients{make: mk}
	c.cur.Store(g)
	return c, nil
}

// serves records repo in g: false when g is full and repo is not among its repositories.
func (g *clientGen) serves(repo string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.repos[repo] {
		return true
	}
	if len(g.repos) >= clientRepos {
		return false
	}
	g.repos[repo] = true
	return true
}

// forRepo is the generation to use for requests about repo (a registry's full repository
// name; "" for requests about none, such as _catalog).
func (c *clients) forRepo(repo string) *clientGen {
	g := c.cur.Load()
	if repo == "" || g.serves(repo) {
		return g
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if g2 := c.cur.Load(); g2 != g && g2.serves(repo) {
		return g2 // another caller replaced it meanwhile
	}
	n, err := c.make()
	if err != nil {
		return c.cur.Load() // the options made one before: keep using the current one
	}
	n.serves(repo)
	c.cur.Store(n)
	return n
}
