/* publish.c - scan a tree, store it, diff it against the parent version,
 * precompute deltas from the last K versions, sign and move the ref. */
#include "config.h"

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "delta.h"
#include "index.h"
#include "manifest.h"
#include "publish.h"
#include "rules.h"
#include "scan.h"
#include "structure.h"

/* ---------------------------------------------------------------- logging */

static void plog(const struct ug_publish_opts *o, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void plog(const struct ug_publish_opts *o, int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!o->log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	o->log(o->log_ctx, level, msg);
}

static void scan_warn(void *ctx, const char *msg)
{
	plog(ctx, UG_LOG_WARN, "%s", msg);
}

/* ---------------------------------------------------------------- thread pool */

/* Jobs are independent; workers take the next index from an atomic counter.
 * Jobs are sorted largest-first by the caller so the long ones start early. */
struct pool {
	size_t njobs;
	atomic_size_t next;
	void *jobs;
	size_t job_size;
	void (*run)(void *ctx, void *job);
	void *ctx;
};

static void *pool_worker(void *arg)
{
	struct pool *p = arg;

	for (;;) {
		size_t i = atomic_fetch_add(&p->next, 1);
		if (i >= p->njobs)
			break;
		p->run(p->ctx, (uint8_t *)p->jobs + i * p->job_size);
	}
	return NULL;
}

static void pool_run(unsigned threads, void *jobs, size_t njobs, size_t job_size,
		     void (*run)(void *, void *), void *ctx)
{
	struct pool p = { .njobs = njobs, .jobs = jobs, .job_size = job_size, .run = run, .ctx = ctx };
	pthread_t tid[64];
	unsigned started = 0;

	atomic_init(&p.next, 0);
	if (threads > 64)
		threads = 64;
	if (threads > njobs)
		threads = (unsigned)njobs;
	for (unsigned i = 1; i < threads; i++) {
		if (pthread_create(&tid[started], NULL, pool_worker, &p) != 0)
			break; /* fewer threads is slower, not wrong */
		started++;
	}
	pool_worker(&p);
	for (unsigned i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
}

/* ---------------------------------------------------------------- phase 1: hash */

/* Hashing is cheap and tells what is new; compressing objects is not, so
 * it waits for the job pool where it overlaps with the deltas. */
struct hash_job {
	const struct ug_scan_entry *e;
	struct ug_hash hash;
	struct ug_xxh xxh;
	uint64_t size;
	int rc;
	bool cached;                 /* from the stat cache: nothing to read */
};

static void hash_job_run(void *vctx, void *vjob)
{
	int treefd = *(int *)vctx;
	struct hash_job *j = vjob;
	int fd;

	if (j->cached)
		return;
	fd = ug_open_beneath(treefd, j->e->path, O_RDONLY, 0);
	if (fd < 0) {
		j->rc = fd;
		return;
	}
	j->rc = ug_hash_fd(fd, &j->hash, &j->xxh, &j->size);
	close(fd);
}

/* ---------------------------------------------------------------- helpers */

static int load_manifest(struct ug_store *s, const char *channel, uint64_t version,
			 const struct ug_pubkey *pk, struct ug_manifest **ret_m,
			 char **ret_json, size_t *ret_len, struct ug_error *err)
{
	char *json = NULL, *sig = NULL;
	size_t jl, sl;
	struct ug_error e = { "" };
	int r;

	r = ug_store_manifest_get(s, channel, version, &json, &jl, &sig, &sl);
	if (r < 0)
		return ug_error_set(err, r, "cannot read manifest %s/%" PRIu64 ": %s", channel,
				    version, r == -EKEYREJECTED ? "signature file missing" : strerror(-r));
	r = ug_sign_verify(pk, UG_SIGN_CONTEXT_MANIFEST, json, jl, sig, sl, &e);
	free(sig);
	if (r < 0) {
		free(json);
		return ug_error_set(err, r, "manifest %s/%" PRIu64 ": %s", channel, version, e.msg);
	}
	r = ug_manifest_parse(json, jl, ret_m, &e);
	if (r < 0) {
		free(json);
		return ug_error_set(err, r, "manifest %s/%" PRIu64 ": %s", channel, version, e.msg);
	}
	if (ret_json) {
		*ret_json = json;
		*ret_len = jl;
	} else {
		free(json);
	}
	return 0;
}

/* Does manifest m hold content h under any path? m->files is sorted by
 * path, so build a sorted hash index once per manifest. */
struct hash_index {
	struct ug_hash *h;
	size_t n;
};

static int hash_cmp_q(const void *a, const void *b)
{
	return ug_hash_cmp(a, b);
}

static int hash_index_build(const struct ug_manifest *m, struct hash_index *ix)
{
	ix->n = 0;
	ix->h = malloc((m->nfiles ? m->nfiles : 1) * sizeof(*ix->h));
	if (!ix->h)
		return -ENOMEM;
	for (size_t i = 0; i < m->nfiles; i++)
		ix->h[ix->n++] = m->files[i].hash;
	qsort(ix->h, ix->n, sizeof(*ix->h), hash_cmp_q);
	return 0;
}

static bool hash_index_has(const struct hash_index *ix, const struct ug_hash *h)
{
	return bsearch(h, ix->h, ix->n, sizeof(*ix->h), hash_cmp_q) != NULL;
}

static const char *path_base(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static const char *path_ext(const char *p)
{
	const char *b = path_base(p), *d = strrchr(b, '.');
	return d && d != b ? d : "";
}

/* "For a new file, the most similar old file by name": same basename
 * elsewhere beats same directory and extension; a longer common name
 * prefix breaks ties (app-1.2.3.js ~ app-1.2.4.js), then the closer size. */
static const struct ug_mfile *similar_file(const struct ug_manifest *old, const struct ug_mfile *f)
{
	const char *fb = path_base(f->path), *fe = path_ext(f->path);
	size_t fdir = (size_t)(fb - f->path);
	const struct ug_mfile *best = NULL;
	long best_score = 0;
	uint64_t best_dist = UINT64_MAX;

	for (size_t i = 0; i < old->nfiles; i++) {
		const struct ug_mfile *o = &old->files[i];
		const char *ob = path_base(o->path);
		size_t odir = (size_t)(ob - o->path), cp = 0;
		long score = 0;
		uint64_t dist;

		if (strcmp(ob, fb) == 0)
			score += 1000;
		else if (strcmp(path_ext(o->path), fe) != 0 || !*fe)
			continue;
		else
			score += 10;
		if (odir == fdir && memcmp(o->path, f->path, fdir) == 0)
			score += 100;
		while (ob[cp] && ob[cp] == fb[cp] && cp < 50)
			cp++;
		score += (long)cp;
		dist = o->size > f->size ? o->size - f->size : f->size - o->size;
		if (score > best_score || (score == best_score && dist < best_dist)) {
			best = o;
			best_score = score;
			best_dist = dist;
		}
	}
	/* a bare extension match with no common name is not "similar" */
	return best_score > 10 ? best : NULL;
}

/* ---------------------------------------------------------------- phase 2: jobs */

/* One pool runs everything expensive, largest first: compressing new
 * objects, per-file deltas and bundles. Targets are read from the tree
 * (not from the objects being written meanwhile), through a snapshot
 * whose hash is checked against the scan. */
enum djob_kind { DJOB_OBJECT, DJOB_FILE, DJOB_BUNDLE };

struct djob {
	enum djob_kind kind;
	uint64_t cost;               /* for largest-first scheduling */
	const char *path;            /* DJOB_OBJECT, DJOB_FILE: a tree file with the target */
	struct ug_hash base, target;
	uint64_t base_size, target_size;
	size_t pair;                 /* DJOB_BUNDLE: index into the plans */
	/* results */
	int rc;
	bool made;                   /* a delta was written */
	bool was_new;                /* ... and did not exist before */
	enum ug_codec codec;
	struct ug_hash id;
	uint64_t size, memory;
	double seconds;              /* wall time of the job, for -v */
	int level;                   /* DJOB_FILE: zstd level for this delta */
};

/* Files above this travel as per-file deltas only: a large binary gains
 * nothing from other files' content, and putting it in the bundle too
 * would compress it twice (doubling publish time for the same bytes). */
#define BUNDLE_FILE_MAX (16ull << 20)

struct bundle_plan {
	uint64_t from;
	const char **new_paths;     /* every content the old version lacks */
	size_t nnew;
	struct ug_hash *bases;
	uint64_t *base_sizes;
	size_t nbases;
	struct ug_hash *targets;
	uint64_t *target_sizes;
	const char **target_paths;
	size_t ntargets;
};

struct delta_ctx {
	struct ug_store *s;
	int treefd;
	struct ug_delta_params params;
	struct bundle_plan *plans;
};

/* Append tree file `path` to out_fd, failing with -UG_ECHANGED if it no longer
 * holds the content hashed at scan time: a file edited during publish
 * must not yield a delta to content the manifest does not describe. */
static int copy_checked(int treefd, const char *path, const struct ug_hash *want, int out_fd)
{
	uint8_t *buf = malloc(1u << 20);
	struct ug_hasher h;
	struct ug_hash got;
	int fd, r;

	if (!buf)
		return -ENOMEM;
	fd = ug_open_beneath(treefd, path, O_RDONLY, 0);
	if (fd < 0) {
		free(buf);
		return fd;
	}
	r = ug_hasher_init(&h);
	while (r == 0) {
		ssize_t n = ug_read_full(fd, buf, 1u << 20);
		if (n < 0)
			r = (int)n;
		else if (n == 0)
			break;
		else {
			ug_hasher_update(&h, buf, (size_t)n);
			r = ug_write_all(out_fd, buf, (size_t)n);
		}
	}
	if (r == 0) {
		ug_hasher_final(&h, &got, NULL, NULL);
		if (!ug_hash_eq(&got, want))
			r = -UG_ECHANGED;
	} else {
		ug_hasher_release(&h);
	}
	close(fd);
	free(buf);
	return r;
}

static int snapshot(struct ug_store *s, int treefd, const char *path, const struct ug_hash *want,
		    int *ret_fd)
{
	int fd = ug_store_tmp_anon(s), r;

	if (fd < 0)
		return fd;
	r = copy_checked(treefd, path, want, fd);
	if (r < 0) {
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

static void djob_object(struct delta_ctx *c, struct djob *j)
{
	struct ug_hash got;
	int fd, r;

	fd = ug_open_beneath(c->treefd, j->path, O_RDONLY, 0);
	if (fd < 0) {
		j->rc = fd;
		return;
	}
	r = ug_store_object_put_fd(c->s, fd, &got, NULL, NULL);
	close(fd);
	if (r == 0 && !ug_hash_eq(&got, &j->target))
		r = -UG_ECHANGED; /* changed since scan; the stray object is harmless */
	j->rc = r;
}

/* Store a finished delta. One that already existed may be listed by an
 * older manifest and must never be removed, so remember which ones this
 * job created: only those are removed if we decide not to keep them. */
static int keep_delta(struct delta_ctx *c, struct djob *j, int ofd, uint64_t size, uint64_t mem)
{
	struct ug_hash id;
	int r, dfd;

	if (lseek(ofd, 0, SEEK_SET) < 0)
		return -errno;
	r = ug_hash_fd(ofd, &id, NULL, NULL);
	if (r < 0)
		return r;
	j->was_new = ug_store_delta_open(c->s, &id, &dfd) != 0;
	if (!j->was_new)
		close(dfd);
	r = ug_store_delta_put_fd(c->s, ofd, &j->id, NULL);
	if (r < 0)
		return r;
	j->made = true;
	j->size = size;
	j->memory = mem;
	return 0;
}

static void djob_file(struct delta_ctx *c, struct djob *j)
{
	int bfd = -1, tfd = -1, ofd = -1, r;
	uint64_t size = 0, mem = 0;
	bool fits = j->base_size + j->target_size <= c->params.window;
	struct ug_delta_params params = c->params;

	params.level = j->level;
	r = ug_store_object_tmp(c->s, &j->base, &bfd);
	if (r == 0)
		r = snapshot(c->s, c->treefd, j->path, &j->target, &tfd);
	if (r == 0) {
		ofd = ug_store_tmp_anon(c->s);
		if (ofd < 0)
			r = ofd;
	}
	if (r == 0) {
		if (fits) {
			j->codec = UG_CODEC_ZSTD_PREFIX;
			r = ug_delta_zstd_create(bfd, tfd, ofd, &params, &size, &mem);
		} else {
			/* prefix mode needs base + target in memory: too big */
			j->codec = UG_CODEC_RSYNC_ZSTD;
			r = ug_delta_rsync_create(bfd, tfd, ofd, &params, &size);
			mem = UG_RSYNC_APPLY_MEMORY; /* fixed buffers, any file size */
		}
	}
	if (r == 0)
		r = keep_delta(c, j, ofd, size, mem);
	if (bfd >= 0)
		close(bfd);
	if (tfd >= 0)
		close(tfd);
	if (ofd >= 0)
		close(ofd);
	j->rc = r;
}

static void djob_bundle(struct delta_ctx *c, struct djob *j)
{
	const struct bundle_plan *p = &c->plans[j->pair];
	int bfd, tfd = -1, ofd = -1, r = 0;
	uint64_t size = 0, mem = 0;

	bfd = ug_store_tmp_anon(c->s);
	if (bfd < 0)
		r = bfd;
	for (size_t i = 0; r == 0 && i < p->nbases; i++)
		r = ug_store_object_extract(c->s, &p->bases[i], bfd);
	if (r == 0) {
		tfd = ug_store_tmp_anon(c->s);
		if (tfd < 0)
			r = tfd;
	}
	for (size_t i = 0; r == 0 && i < p->ntargets; i++)
		r = copy_checked(c->treefd, p->target_paths[i], &p->targets[i], tfd);
	if (r == 0) {
		ofd = ug_store_tmp_anon(c->s);
		if (ofd < 0)
			r = ofd;
	}
	if (r == 0)
		r = ug_delta_bundle_create(&bfd, 1, &tfd, 1, ofd, &c->params, &size, &mem);
	if (r == 0) {
		j->codec = UG_CODEC_ZSTD_BUNDLE;
		r = keep_delta(c, j, ofd, size, mem);
	}
	if (r == -EFBIG)
		r = 0; /* over the window: no bundle for this pair */
	if (bfd >= 0)
		close(bfd);
	if (tfd >= 0)
		close(tfd);
	if (ofd >= 0)
		close(ofd);
	j->rc = r;
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void djob_run(void *vctx, void *vjob)
{
	struct djob *j = vjob;
	double t0 = now_seconds();

	switch (j->kind) {
	case DJOB_OBJECT:
		djob_object(vctx, j);
		break;
	case DJOB_FILE:
		djob_file(vctx, j);
		break;
	case DJOB_BUNDLE:
		djob_bundle(vctx, j);
		break;
	}
	j->seconds = now_seconds() - t0;
}

static int djob_cmp_cost(const void *a, const void *b)
{
	const struct djob *x = a, *y = b;
	return x->cost < y->cost ? 1 : x->cost > y->cost ? -1 : 0;
}

static void bundle_plan_release(struct bundle_plan *p)
{
	free(p->bases);
	free(p->base_sizes);
	free(p->targets);
	free(p->target_sizes);
	free(p->target_paths);
	free(p->new_paths);
	memset(p, 0, sizeof(*p));
}

/* ---------------------------------------------------------------- publish */

struct pub {
	struct ug_store *s;
	const struct ug_publish_opts *o;
	struct ug_publish_result res;
	struct ug_pubkey pub;
	struct ug_manifest *m;            /* the new manifest */
	struct ug_manifest *parent;       /* NULL for the first version */
	struct ug_manifest *olds[16];     /* last K versions, newest first */
	char *old_json[16];
	size_t old_json_len[16];
	size_t nolds;
	struct hash_index old_ix[16];
	struct djob *jobs;
	size_t njobs, jobs_alloc;
	struct bundle_plan plans[16];
	struct ug_index index;            /* the stat cache for the next publish */
	struct ug_rules *rules;           /* of the tree being published */
	int64_t scan_start_ns;
};

static int add_job(struct pub *p, struct djob **ret)
{
	if (p->njobs == p->jobs_alloc) {
		size_t na = p->jobs_alloc ? p->jobs_alloc * 2 : 256;
		struct djob *nj = reallocarray(p->jobs, na, sizeof(*nj));
		if (!nj)
			return -ENOMEM;
		p->jobs = nj;
		p->jobs_alloc = na;
	}
	*ret = &p->jobs[p->njobs++];
	memset(*ret, 0, sizeof(**ret));
	return 0;
}

static unsigned pool_threads(struct ug_store *s)
{
	return s->cfg.threads ? s->cfg.threads : ug_ncpus();
}

/* The repo trusts one key: REPO/master.pub. Checked before any work;
 * written (first publish) only together with the first manifest, so a
 * failed publish does not tie the repo to a key. */
static int trust_key(struct pub *p, bool write, struct ug_error *err)
{
	char text[256], *have = NULL;
	size_t len;
	struct ug_pubkey repo_pk;
	int r;

	ug_pubkey_format(&p->pub, text, sizeof(text));
	r = ug_file_read(p->s->dirfd, "master.pub", 4096, &have, &len);
	if (r == -ENOENT) {
		size_t n = strlen(text);
		if (!write)
			return 0;
		text[n] = '\n';
		r = ug_file_write_atomic(p->s->dirfd, "master.pub", text, n + 1, 0644);
		if (r < 0)
			return ug_error_set(err, r, "cannot write '%s/master.pub': %s", p->s->path,
					    strerror(-r));
		return 0;
	}
	if (r < 0)
		return ug_error_set(err, r, "cannot read '%s/master.pub': %s", p->s->path, strerror(-r));
	r = ug_pubkey_parse(have, len, &repo_pk, NULL);
	free(have);
	if (r < 0)
		return ug_error_set(err, -EBADMSG, "'%s/master.pub' is not a valid upgrid public key",
				    p->s->path);
	if (memcmp(repo_pk.pk, p->pub.pk, sizeof(repo_pk.pk)) != 0) {
		char a[UG_KEYID_HEX_LEN + 1], b[UG_KEYID_HEX_LEN + 1];
		ug_key_id(&repo_pk, a);
		ug_key_id(&p->pub, b);
		return ug_error_set(err, -EKEYREJECTED,
				    "repo '%s' is signed by key %s but this key is %s; publish with the key whose public half is in '%s/master.pub'",
				    p->s->path, a, b, p->s->path);
	}
	return 0;
}

static int scan_and_hash(struct pub *p, int treefd, struct ug_error *err)
{
	struct ug_rules *rules = NULL; /* kept in p->rules on success */
	struct ug_scan scan = { 0 };
	struct hash_job *jobs = NULL;
	struct ug_index old_index = { 0 };
	struct ug_error e = { "" };
	size_t nfiles = 0, ncached = 0;
	int r;

	r = ug_index_load(p->s, p->o->channel, &old_index);
	if (r == -EBADMSG)
		plog(p->o, UG_LOG_WARN, "stat cache of channel '%s' is corrupt; rehashing everything",
		     p->o->channel);
	r = ug_rules_load(treefd, &rules, &e);
	if (r < 0)
		return ug_error_set(err, r, "tree '%s': %s", p->o->tree, e.msg);
	r = ug_scan_tree(treefd, rules, &scan, scan_warn, (void *)p->o, &e);
	if (r < 0) {
		ug_error_set(err, r, "cannot scan '%s': %s", p->o->tree, e.msg);
		goto out;
	}
	jobs = calloc(scan.n ? scan.n : 1, sizeof(*jobs));
	if (!jobs) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < scan.n; i++) {
		const struct ug_index_entry *x;
		struct hash_job *j;

		if (scan.entries[i].type != UG_SCAN_FILE)
			continue;
		j = &jobs[nfiles++];
		j->e = &scan.entries[i];
		x = ug_index_lookup(&old_index, j->e);
		if (x) {
			j->hash = x->hash;
			j->xxh = x->xxh;
			j->size = x->size;
			j->cached = true;
			ncached++;
		}
	}
	plog(p->o, UG_LOG_INFO, "hashing %zu of %zu files in '%s' (%zu unchanged since the last scan)",
	     nfiles - ncached, nfiles, p->o->tree, ncached);
	pool_run(pool_threads(p->s), jobs, nfiles, sizeof(*jobs), hash_job_run, &treefd);

	for (size_t i = 0, fi = 0; i < scan.n; i++) {
		const struct ug_scan_entry *se = &scan.entries[i];

		if (se->type == UG_SCAN_DIR) {
			struct ug_mdir *d = ug_manifest_add_dir(p->m);
			if (!d || !(d->path = strdup(se->path))) {
				r = -ENOMEM;
				goto out;
			}
			d->mode = se->mode;
			continue;
		}
		struct hash_job *j = &jobs[fi++];
		struct ug_mfile *f;

		if (j->rc < 0) {
			r = ug_error_set(err, j->rc, "cannot read '%s/%s': %s", p->o->tree, se->path,
					 strerror(-j->rc));
			goto out;
		}
		f = ug_manifest_add_file(p->m);
		if (!f || !(f->path = strdup(se->path))) {
			r = -ENOMEM;
			goto out;
		}
		r = ug_index_add(&p->index, se, &j->hash, &j->xxh);
		if (r < 0)
			goto out;
		f->mode = se->mode;
		f->size = j->size;
		f->hash = j->hash;
		f->xxh = j->xxh;
		f->cls = ug_rules_class(rules, se->path);
		f->action = f->cls == UG_CLASS_PRESERVE ? UG_ACTION_PRESERVE : UG_ACTION_REPLACE;
		p->res.tree_bytes += j->size;
	}
	p->res.nfiles = p->m->nfiles;
	p->rules = rules;
	rules = NULL;
	r = 0;
out:
	free(jobs);
	ug_index_release(&old_index);
	ug_scan_release(&scan);
	ug_rules_free(rules);
	return r;
}

/* ---------------------------------------------------------------- structure */

/* Read a tree file into memory (at most max bytes, -E2BIG beyond),
 * checking it still has the content hashed at scan time. */
static int read_tree_file(int treefd, const struct ug_mfile *f, size_t max, uint8_t **ret)
{
	struct ug_hash got;
	uint8_t *buf;
	ssize_t n;
	int fd;

	if (f->size > max)
		return -E2BIG;
	buf = malloc(f->size ? f->size : 1);
	if (!buf)
		return -ENOMEM;
	fd = ug_open_beneath(treefd, f->path, O_RDONLY, 0);
	if (fd < 0) {
		free(buf);
		return fd;
	}
	n = ug_read_full(fd, buf, f->size);
	close(fd);
	ug_hash_buf(buf, n < 0 ? 0 : (size_t)n, &got, NULL);
	if (n < 0 || (uint64_t)n != f->size || !ug_hash_eq(&got, &f->hash)) {
		free(buf);
		return n < 0 ? (int)n : -UG_ECHANGED;
	}
	*ret = buf;
	return 0;
}

static int read_object(struct ug_store *s, const struct ug_mfile *f, size_t max, uint8_t **ret)
{
	uint8_t *buf;
	ssize_t n;
	int fd, r;

	if (f->size > max)
		return -E2BIG;
	r = ug_store_object_tmp(s, &f->hash, &fd);
	if (r < 0)
		return r;
	buf = malloc(f->size ? f->size : 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	n = ug_read_full(fd, buf, f->size);
	close(fd);
	if (n < 0 || (uint64_t)n != f->size) {
		free(buf);
		return n < 0 ? (int)n : -EBADMSG;
	}
	*ret = buf;
	return 0;
}

/* Does the content parse as its class says? */
static int parse_check(const struct ug_mfile *f, const uint8_t *data, struct ug_error *e)
{
	enum ug_struct_format fmt = ug_struct_format_for(f->cls, f->path);
	int r;

	if (fmt == UG_STRUCT_KV || fmt == UG_STRUCT_INI) {
		struct ug_conf *c = NULL;
		r = ug_conf_parse(data, f->size, &c, e);
		ug_conf_free(c);
	} else {
		struct ug_table *t = NULL;
		r = ug_table_parse(fmt, data, f->size, &t, e);
		ug_table_free(t);
	}
	return r;
}

/* Config and data files get a structural view: what changed in keys,
 * sections or columns relative to the parent, which decides between
 * patch and merge/migrate. A file that does not parse is published as
 * binary with a warning (it then gets deltas like any binary). This runs
 * before the unchanged check so that the verdict on an unchanged file is
 * the same every time. */
static int analyze_structure(struct pub *p, int treefd, struct ug_error *err)
{
	for (size_t i = 0; i < p->m->nfiles; i++) {
		struct ug_mfile *f = &p->m->files[i];
		const struct ug_mfile *old;
		struct ug_column_rename *renames = NULL;
		size_t nrenames = 0;
		uint8_t *cur = NULL, *prev = NULL;
		struct ug_error e = { "" };
		int r;

		if (f->cls != UG_CLASS_CONFIG && f->cls != UG_CLASS_DATA)
			continue;
		old = p->parent ? ug_manifest_find(p->parent, f->path) : NULL;
		/* unchanged and judged the same way last time: nothing to do */
		if (old && ug_hash_eq(&old->hash, &f->hash) && old->cls == f->cls)
			continue;
		/* unchanged but binary last time: malformed then (the same verdict
		 * now, not worth a warning on every publish) or binary by the
		 * rules of then (now config/data): parse quietly to tell */
		if (old && ug_hash_eq(&old->hash, &f->hash) && old->cls == UG_CLASS_BINARY) {
			r = read_tree_file(treefd, f, UG_STRUCT_FILE_MAX, &cur);
			if (r == 0)
				r = parse_check(f, cur, &e);
			free(cur);
			if (r == -ENOMEM)
				return r;
			if (r < 0)
				f->cls = UG_CLASS_BINARY;
			continue;
		}
		r = read_tree_file(treefd, f, UG_STRUCT_FILE_MAX, &cur);
		if (r == -UG_ECHANGED)
			return ug_error_set(err, r, "'%s/%s' changed while it was being published; publish again when the tree is quiet",
					    p->o->tree, f->path);
		if (r == 0)
			r = parse_check(f, cur, &e);
		else if (r == -E2BIG)
			ug_error_set(&e, r, "larger than %u MiB", UG_STRUCT_FILE_MAX >> 20);
		if (r == -ENOMEM) {
			free(cur);
			return r;
		}
		if (r < 0) {
			plog(p->o, UG_LOG_WARN, "'%s': not a valid %s file (%s); publishing it as binary",
			     f->path, ug_class_name(f->cls), e.msg[0] ? e.msg : strerror(-r));
			f->cls = UG_CLASS_BINARY;
			free(cur);
			continue;
		}
		/* a changed file whose old version had the same class: diff them */
		if (old && old->cls == f->cls && !ug_hash_eq(&old->hash, &f->hash) &&
		    read_object(p->s, old, UG_STRUCT_FILE_MAX, &prev) == 0 &&
		    ug_rules_renames(p->rules, f->path, &renames, &nrenames) == 0) {
			r = ug_struct_compare(f->cls, f->path, prev, old->size, cur, f->size, renames,
					      nrenames, &f->structure, &e);
			if (r < 0)
				plog(p->o, UG_LOG_WARN, "'%s': no structural diff against version %" PRIu64 " (%s)",
				     f->path, p->parent->version, e.msg);
		}
		free(renames);
		free(prev);
		free(cur);
	}
	return 0;
}

static bool same_tree(const struct ug_manifest *a, const struct ug_manifest *b)
{
	if (a->nfiles != b->nfiles || a->ndirs != b->ndirs)
		return false;
	for (size_t i = 0; i < a->nfiles; i++) {
		const struct ug_mfile *x = &a->files[i], *y = &b->files[i];
		if (strcmp(x->path, y->path) || x->mode != y->mode || !ug_hash_eq(&x->hash, &y->hash) ||
		    x->cls != y->cls)
			return false;
	}
	for (size_t i = 0; i < a->ndirs; i++)
		if (strcmp(a->dirs[i].path, b->dirs[i].path) || a->dirs[i].mode != b->dirs[i].mode)
			return false;
	return true;
}

/* Adds, removals, renames (same content under a new path) and mode
 * changes relative to the parent. */
static int diff_parent(struct pub *p)
{
	const struct ug_manifest *old = p->parent;
	struct ug_manifest *m = p->m;

	if (!old) {
		p->res.added = m->nfiles;
		return 0;
	}
	for (size_t i = 0; i < m->nfiles; i++) {
		const struct ug_mfile *o = ug_manifest_find(old, m->files[i].path);
		if (!o)
			p->res.added++;
		else if (!ug_hash_eq(&o->hash, &m->files[i].hash))
			p->res.modified++;
		else if (o->mode != m->files[i].mode)
			p->res.mode_changed++;
	}
	for (size_t i = 0; i < old->nfiles; i++) {
		const struct ug_mfile *o = &old->files[i];
		const struct ug_mfile *moved = NULL;

		if (ug_manifest_find(m, o->path))
			continue;
		/* a new path with the same content is a rename */
		for (size_t k = 0; k < m->nfiles; k++) {
			if (ug_hash_eq(&m->files[k].hash, &o->hash) && !ug_manifest_find(old, m->files[k].path)) {
				moved = &m->files[k];
				break;
			}
		}
		if (moved) {
			struct ug_mrename *rn = ug_manifest_add_renamed(m);
			if (!rn || !(rn->from = strdup(o->path)) || !(rn->to = strdup(moved->path)))
				return -ENOMEM;
			rn->hash = o->hash;
			p->res.renamed++;
			p->res.added--;
		} else {
			struct ug_mremoved *rm = ug_manifest_add_removed(m);
			if (!rm || !(rm->path = strdup(o->path)))
				return -ENOMEM;
			rm->hash = o->hash;
			p->res.removed++;
		}
	}
	return 0;
}

/* Which file-level deltas to compute: for each old version, each new
 * content it lacks gets a delta from its base (same path, else a similar
 * name). Identical (base, target) pairs are computed once. */
static int plan_file_deltas(struct pub *p)
{
	struct ug_manifest *m = p->m;
	int r;

	for (size_t v = 0; v < p->nolds; v++) {
		const struct ug_manifest *old = p->olds[v];
		struct bundle_plan *bp = &p->plans[v];
		struct hash_index newix;
		size_t cap = m->nfiles + old->nfiles + 1;

		bp->from = old->version;
		bp->targets = calloc(cap, sizeof(*bp->targets));
		bp->target_sizes = calloc(cap, sizeof(*bp->target_sizes));
		bp->bases = calloc(cap, sizeof(*bp->bases));
		bp->base_sizes = calloc(cap, sizeof(*bp->base_sizes));
		bp->target_paths = calloc(cap, sizeof(*bp->target_paths));
		bp->new_paths = calloc(cap, sizeof(*bp->new_paths));
		if (!bp->targets || !bp->target_sizes || !bp->bases || !bp->base_sizes ||
		    !bp->target_paths || !bp->new_paths)
			return -ENOMEM;
		r = hash_index_build(m, &newix);
		if (r < 0)
			return r;

		for (size_t i = 0; i < m->nfiles; i++) {
			const struct ug_mfile *f = &m->files[i];
			const struct ug_mfile *base;
			bool dup = false;

			if (f->cls == UG_CLASS_PRESERVE || hash_index_has(&p->old_ix[v], &f->hash))
				continue; /* terminal on `old` already holds this content */
			for (size_t t = 0; t < bp->nnew && !dup; t++)
				dup = ug_hash_eq(&ug_manifest_find(m, bp->new_paths[t])->hash, &f->hash);
			if (dup)
				continue;
			bp->new_paths[bp->nnew++] = f->path;
			if (f->size <= BUNDLE_FILE_MAX) {
				bp->targets[bp->ntargets] = f->hash;
				bp->target_paths[bp->ntargets] = f->path;
				bp->target_sizes[bp->ntargets++] = f->size;
			}

			base = ug_manifest_find(old, f->path);
			if (!base)
				base = similar_file(old, f);
			if (!base)
				continue;
			if (f->size <= BUNDLE_FILE_MAX && base->size <= BUNDLE_FILE_MAX) {
				bp->bases[bp->nbases] = base->hash;
				bp->base_sizes[bp->nbases++] = base->size;
			}

			/* same (base, target) already planned for another version? */
			dup = false;
			for (size_t k = 0; k < p->njobs; k++) {
				struct djob *o = &p->jobs[k];
				if (o->kind == DJOB_FILE && ug_hash_eq(&o->base, &base->hash) &&
				    ug_hash_eq(&o->target, &f->hash))
					dup = true;
			}
			if (!dup) {
				struct djob *j;
				r = add_job(p, &j);
				if (r < 0) {
					free(newix.h);
					return r;
				}
				j->kind = DJOB_FILE;
				j->path = f->path;
				j->base = base->hash;
				j->target = f->hash;
				j->base_size = base->size;
				j->target_size = f->size;
				j->cost = base->size + f->size;
			}
		}
		/* removed content is a good prefix too: code moves out of it */
		for (size_t i = 0; i < old->nfiles; i++) {
			const struct ug_mfile *o = &old->files[i];
			bool dup = false;

			if (hash_index_has(&newix, &o->hash) || o->size > BUNDLE_FILE_MAX)
				continue;
			for (size_t b = 0; b < bp->nbases; b++)
				if (ug_hash_eq(&bp->bases[b], &o->hash))
					dup = true;
			if (dup)
				continue;
			bp->bases[bp->nbases] = o->hash;
			bp->base_sizes[bp->nbases++] = o->size;
		}
		free(newix.h);
		/* dedupe bases (two targets may share one) and fit the window:
		 * targets must fit whole, bases are dropped from the end */
		{
			uint64_t total = 0;
			size_t nb = 0;
			for (size_t t = 0; t < bp->ntargets; t++)
				total += bp->target_sizes[t];
			for (size_t b = 0; b < bp->nbases; b++) {
				bool dup = false;
				for (size_t k = 0; k < nb; k++)
					if (ug_hash_eq(&bp->bases[k], &bp->bases[b]))
						dup = true;
				if (dup || total + bp->base_sizes[b] > p->s->cfg.window)
					continue;
				total += bp->base_sizes[b];
				bp->bases[nb] = bp->bases[b];
				bp->base_sizes[nb++] = bp->base_sizes[b];
			}
			bp->nbases = nb;
			/* one file over at most its own base: the bundle would be
			 * that file's delta, byte for byte */
			if ((bp->ntargets > 1 || bp->nbases > 1) && bp->ntargets > 0 &&
			    total <= p->s->cfg.window) {
				struct djob *j;
				r = add_job(p, &j);
				if (r < 0)
					return r;
				j->kind = DJOB_BUNDLE;
				j->pair = v;
				j->cost = total;
			}
		}
	}
	return 0;
}

/* Objects are all written now: record their stored sizes. */
static int record_stored(struct pub *p)
{
	for (size_t i = 0; i < p->m->nfiles; i++) {
		struct ug_mfile *f = &p->m->files[i];
		int r = ug_store_object_stat(p->s, &f->hash, &f->stored, NULL);
		if (r < 0)
			return r;
		p->res.full_bytes += f->stored;
	}
	return 0;
}

/* Is this id listed by the new manifest? Deltas are content-addressed, so
 * two jobs can produce the same bytes (a bundle of one file over one base
 * is that file's delta): one kept, one not. */
static bool delta_listed(const struct ug_manifest *m, const struct ug_hash *id)
{
	for (size_t i = 0; i < m->nbundles; i++)
		if (ug_hash_eq(&m->bundles[i].id, id))
			return true;
	for (size_t i = 0; i < m->nfiles; i++)
		for (size_t d = 0; d < m->files[i].ndeltas; d++)
			if (ug_hash_eq(&m->files[i].deltas[d].id, id))
				return true;
	return false;
}

/* Remove the deltas we decided not to keep, if this publish created them
 * (an older one may be listed by an older manifest) and the new manifest
 * does not list the same bytes for another reason. */
static void drop_unkept(struct pub *p)
{
	for (size_t k = 0; k < p->njobs; k++) {
		const struct djob *j = &p->jobs[k];
		if (j->kind != DJOB_OBJECT && j->made && j->was_new && !delta_listed(p->m, &j->id))
			ug_store_delta_remove(p->s, &j->id);
	}
}

/* Put the deltas worth keeping into the manifest (a delta is kept only
 * when it is smaller than what it replaces: the object for a file delta,
 * the per-file set for a bundle) and total up, per old version, what a
 * terminal on it pulls. */
static int attach_deltas(struct pub *p)
{
	struct ug_manifest *m = p->m;

	for (size_t k = 0; k < p->njobs; k++) {
		const struct djob *j = &p->jobs[k];
		struct ug_mfile *f;
		struct ug_mdelta *d;

		if (j->kind != DJOB_FILE || !j->made)
			continue;
		for (size_t i = 0; i < m->nfiles; i++) {
			f = &m->files[i];
			if (!ug_hash_eq(&j->target, &f->hash) || j->size >= f->stored ||
			    f->ndeltas >= UG_DELTAS_PER_FILE_MAX)
				continue;
			d = ug_mfile_add_delta(f);
			if (!d)
				return -ENOMEM;
			d->from = j->base;
			d->codec = j->codec;
			d->id = j->id;
			d->size = j->size;
			d->memory = j->memory;
		}
	}
	for (size_t v = 0; v < p->nolds; v++) {
		struct bundle_plan *bp = &p->plans[v];
		struct ug_publish_pair *pair = &p->res.pairs[v];
		uint64_t per_file = 0;

		uint64_t members = 0; /* per-file cost of what the bundle holds */

		pair->from = bp->from;
		for (size_t t = 0; t < bp->nnew; t++) {
			/* cheapest of: full object, any delta from a base `from` holds */
			const struct ug_mfile *f = ug_manifest_find(m, bp->new_paths[t]);
			uint64_t best = f->stored;

			for (size_t d = 0; d < f->ndeltas; d++)
				if (hash_index_has(&p->old_ix[v], &f->deltas[d].from) && f->deltas[d].size < best)
					best = f->deltas[d].size;
			per_file += best;
			if (f->size <= BUNDLE_FILE_MAX)
				members += best;
		}
		pair->per_file_bytes = per_file;
		pair->best_bytes = per_file; /* manifest part added by the caller */
		for (size_t k = 0; k < p->njobs; k++) {
			const struct djob *j = &p->jobs[k];
			struct ug_mbundle *b;

			if (j->kind != DJOB_BUNDLE || j->pair != v || !j->made)
				continue;
			if (j->size >= members)
				break; /* not smaller than what it replaces */
			b = ug_manifest_add_bundle(m);
			if (!b)
				return -ENOMEM;
			b->from = bp->from;
			b->id = j->id;
			b->size = j->size;
			b->memory = j->memory;
			b->bases = malloc((bp->nbases ? bp->nbases : 1) * sizeof(*b->bases));
			b->targets = malloc(bp->ntargets * sizeof(*b->targets));
			b->target_sizes = malloc(bp->ntargets * sizeof(*b->target_sizes));
			if (!b->bases || !b->targets || !b->target_sizes)
				return -ENOMEM;
			memcpy(b->bases, bp->bases, bp->nbases * sizeof(*b->bases));
			memcpy(b->targets, bp->targets, bp->ntargets * sizeof(*b->targets));
			memcpy(b->target_sizes, bp->target_sizes, bp->ntargets * sizeof(*b->target_sizes));
			b->nbases = bp->nbases;
			b->ntargets = bp->ntargets;
			pair->bundle_bytes = j->size;
			/* files above BUNDLE_FILE_MAX still come per file */
			pair->best_bytes = per_file - members + j->size;
		}
	}
	p->res.npairs = p->nolds;
	drop_unkept(p);
	return 0;
}

/* New content becomes objects: one job per distinct hash not yet stored. */
static int plan_objects(struct pub *p)
{
	struct ug_manifest *m = p->m;
	struct hash_index seen = { 0 };
	int r;

	seen.h = malloc((m->nfiles ? m->nfiles : 1) * sizeof(*seen.h));
	if (!seen.h)
		return -ENOMEM;
	for (size_t i = 0; i < m->nfiles; i++) {
		const struct ug_mfile *f = &m->files[i];
		bool dup = false;
		struct djob *j;

		/* seen holds this publish's planned objects, unsorted: linear is
		 * fine for the few new files of a typical version */
		for (size_t k = 0; k < seen.n && !dup; k++)
			dup = ug_hash_eq(&seen.h[k], &f->hash);
		if (dup || ug_store_object_exists(p->s, &f->hash))
			continue;
		seen.h[seen.n++] = f->hash;
		r = add_job(p, &j);
		if (r < 0) {
			free(seen.h);
			return r;
		}
		j->kind = DJOB_OBJECT;
		j->path = f->path;
		j->target = f->hash;
		j->target_size = f->size;
		j->cost = f->size;
	}
	free(seen.h);
	return 0;
}

/* Is this content inside the planned bundle of every older version that
 * lacks it? */
static bool covered_by_bundles(const struct pub *p, const struct ug_hash *target)
{
	for (size_t v = 0; v < p->nolds; v++) {
		const struct bundle_plan *bp = &p->plans[v];
		bool has_job = false, member = false;

		if (hash_index_has(&p->old_ix[v], target))
			continue; /* that version holds it: no delta needed there */
		for (size_t k = 0; k < p->njobs && !has_job; k++)
			has_job = p->jobs[k].kind == DJOB_BUNDLE && p->jobs[k].pair == v;
		for (size_t t = 0; t < bp->ntargets && !member; t++)
			member = ug_hash_eq(&bp->targets[t], target);
		if (!has_job || !member)
			return false;
	}
	return true;
}

static int run_jobs(struct pub *p, int treefd, struct ug_error *err)
{
	struct delta_ctx c = { .s = p->s, .treefd = treefd, .plans = p->plans };
	size_t nobj = 0;
	int r;

	r = plan_objects(p);
	if (r == 0)
		r = plan_file_deltas(p);
	if (r < 0)
		return ug_error_set(err, r, "cannot plan the work: %s", strerror(-r));
	for (size_t k = 0; k < p->njobs; k++) {
		struct djob *j = &p->jobs[k];
		nobj += j->kind == DJOB_OBJECT;
		/* a file delta that only backs up a bundle is a fallback path:
		 * cheaper level; one that is a main path (a big file, or a pair
		 * without a bundle) gets the full level */
		if (j->kind == DJOB_FILE)
			j->level = covered_by_bundles(p, &j->target) ? p->s->cfg.fallback_level
								     : p->s->cfg.level;
	}
	ug_delta_params_default(&c.params);
	c.params.level = p->s->cfg.level;
	c.params.window = p->s->cfg.window;
	if (p->njobs) /* qsort(NULL, 0) is undefined */
		qsort(p->jobs, p->njobs, sizeof(*p->jobs), djob_cmp_cost);
	plog(p->o, UG_LOG_INFO, "storing %zu new objects and computing %zu deltas from %zu earlier version%s",
	     nobj, p->njobs - nobj, p->nolds, p->nolds == 1 ? "" : "s");
	pool_run(pool_threads(p->s), p->jobs, p->njobs, sizeof(*p->jobs), djob_run, &c);
	{
		static const char *const kinds[] = { "object", "delta", "bundle" };
		double total[3] = { 0, 0, 0 };

		for (size_t k = 0; k < p->njobs; k++) {
			const struct djob *j = &p->jobs[k];
			total[j->kind] += j->seconds;
			if (j->seconds >= 0.5)
				plog(p->o, UG_LOG_DEBUG, "%s %s: %.1f s", kinds[j->kind],
				     j->kind == DJOB_BUNDLE ? "" : j->path, j->seconds);
		}
		plog(p->o, UG_LOG_DEBUG, "job time: objects %.1f s, file deltas %.1f s, bundles %.1f s",
		     total[0], total[1], total[2]);
	}
	for (size_t k = 0; k < p->njobs; k++) {
		const struct djob *j = &p->jobs[k];
		char hex[UG_HASH_HEX_LEN + 1];

		if (j->rc == 0)
			continue;
		if (j->rc == -UG_ECHANGED)
			return ug_error_set(err, -UG_ECHANGED,
					    "'%s/%s' changed while it was being published; publish again when the tree is quiet",
					    p->o->tree, j->path ? j->path : "(bundle)");
		ug_hash_hex(&j->target, hex);
		return ug_error_set(err, j->rc, "cannot %s%s%s: %s",
				    j->kind == DJOB_OBJECT ? "store '" : j->kind == DJOB_FILE ? "compute a delta for '" : "compute a bundle",
				    j->path && j->kind != DJOB_BUNDLE ? j->path : "",
				    j->kind != DJOB_BUNDLE ? "'" : "", strerror(-j->rc));
	}
	r = record_stored(p);
	if (r == 0)
		r = attach_deltas(p);
	if (r < 0)
		return ug_error_set(err, r, "cannot record objects and deltas: %s", strerror(-r));
	for (size_t i = 0; i < p->m->nfiles; i++) {
		struct ug_mfile *f = &p->m->files[i];
		f->action = ug_struct_action(f->cls, f->structure, f->ndeltas > 0);
	}
	return 0;
}

static int load_history(struct pub *p, uint64_t latest, struct ug_error *err)
{
	uint64_t *versions = NULL;
	size_t n = 0;
	unsigned k = p->s->cfg.keep_deltas;
	int r;

	r = ug_store_versions(p->s, p->o->channel, &versions, &n);
	if (r < 0)
		return ug_error_set(err, r, "cannot list versions: %s", strerror(-r));
	if (k > 16)
		k = 16;
	/* the parent always, even with keep-deltas = 0: it is what we diff against */
	for (size_t i = n; i-- > 0 && p->nolds < (k ? k : 1);) {
		if (versions[i] > latest)
			continue;
		r = load_manifest(p->s, p->o->channel, versions[i], &p->pub, &p->olds[p->nolds],
				  &p->old_json[p->nolds], &p->old_json_len[p->nolds], err);
		if (r < 0)
			break;
		r = hash_index_build(p->olds[p->nolds], &p->old_ix[p->nolds]);
		if (r < 0) {
			ug_manifest_free(p->olds[p->nolds]);
			free(p->old_json[p->nolds]);
			break;
		}
		p->nolds++;
	}
	free(versions);
	if (r < 0)
		return r;
	if (p->nolds == 0 || p->olds[0]->version != latest)
		return ug_error_set(err, -EBADMSG, "manifest %s/%" PRIu64 " named by the ref is missing",
				    p->o->channel, latest);
	p->parent = p->olds[0];
	if (k == 0)
		p->nolds = 0; /* diff against the parent but compute no deltas */
	return 0;
}

/* REPO/cluster, when the repo has one, is the chain list every manifest
 * carries (upgrid.conf(5), CLUSTER FILE). A bad file fails the publish:
 * a version must not go out with a chain list nobody meant. */
static int load_chains(struct pub *p, struct ug_cluster **ret, struct ug_error *err)
{
	struct ug_cluster *c = NULL;
	struct ug_error e = { "" };
	size_t nservers = 0;
	int r;

	r = ug_cluster_load(p->s->dirfd, "cluster", &c, &e);
	if (r == -ENOENT) {
		*ret = NULL;
		return 0;
	}
	if (r < 0)
		return ug_error_set(err, r, "'%s/cluster': %s", p->s->path, e.msg);
	for (size_t i = 0; i < c->ngroups; i++)
		nservers += c->groups[i].nservers;
	plog(p->o, UG_LOG_INFO, "chain list: %zu group%s, %zu server%s", c->ngroups,
	     c->ngroups == 1 ? "" : "s", nservers, nservers == 1 ? "" : "s");
	*ret = c;
	return 0;
}

#define MANIFEST_BIG_LEVEL 3

int ug_publish_mdelta(struct ug_store *s, const char *channel, uint64_t from, uint64_t to,
		      const char *json, size_t len, const char *prefix, size_t prefix_len,
		      size_t keep_below, size_t *ret_len)
{
	int level = s->cfg.level;
	uint8_t *d;
	size_t dl;
	int r;

	/* Level 19 on a big manifest (100,000 files: 24 MB) takes ~20 s per
	 * delta for a few hundred bytes less (level 3: 0.2 s): above 1 MiB
	 * use a fast level, so a one-file change on a big tree publishes in
	 * seconds. */
	if (len > (1u << 20) && level > MANIFEST_BIG_LEVEL)
		level = MANIFEST_BIG_LEVEL;
	r = ug_zstd_compress_buf(json, len, level, prefix, prefix_len, &d, &dl);
	if (r < 0)
		return r;
	if (keep_below == 0 || dl < keep_below)
		r = ug_store_mdelta_put(s, channel, from, to, d, dl);
	free(d);
	if (r == 0 && ret_len)
		*ret_len = dl;
	return r;
}

static int write_manifest(struct pub *p, struct ug_error *err)
{
	struct ug_error e = { "" };
	char *json = NULL, *sig = NULL;
	size_t jl, sl, zl = 0;
	int r;

	r = ug_manifest_write(p->m, &json, &jl, &e);
	if (r < 0)
		return ug_error_set(err, r, "cannot write manifest: %s", e.msg);
	/* "from version 0": the manifest compressed on its own, what a new
	 * server or terminal fetches instead of the plain document */
	r = ug_publish_mdelta(p->s, p->o->channel, 0, p->m->version, json, jl, NULL, 0, 0, &zl);
	if (r < 0)
		goto out;
	p->res.manifest_bytes = zl;
	p->res.full_bytes += zl;
	/* manifest deltas: a terminal holding version V's manifest pulls only
	 * the change */
	for (size_t v = 0; v < p->nolds; v++) {
		size_t dl = 0;

		r = ug_publish_mdelta(p->s, p->o->channel, p->olds[v]->version, p->m->version, json,
				      jl, p->old_json[v], p->old_json_len[v], zl, &dl);
		if (r < 0)
			goto out;
		p->res.pairs[v].manifest_delta_bytes = dl < zl ? dl : zl;
	}
	r = ug_sign(p->o->key, UG_SIGN_CONTEXT_MANIFEST, json, jl, &sig, &sl);
	if (r < 0)
		goto out;
	r = ug_store_manifest_put(p->s, p->o->channel, p->m->version, json, jl, sig, sl);
	if (r < 0)
		goto out;
	/* the ref moves last: only now does the version exist for readers */
	r = ug_store_ref_write(p->s, p->o->channel, p->m->version);
out:
	if (r < 0)
		ug_error_set(err, r, "cannot store version %" PRIu64 ": %s", p->m->version, strerror(-r));
	free(json);
	free(sig);
	return r;
}

int ug_publish(struct ug_store *s, const struct ug_publish_opts *o,
	       struct ug_publish_result *ret, struct ug_error *err)
{
	struct pub p = { .s = s, .o = o };
	struct ug_cluster *chains = NULL;
	uint64_t latest = 0;
	int treefd = -1, r;
	char kid[UG_KEYID_HEX_LEN + 1];

	r = ug_channel_check(o->channel, err);
	if (r < 0)
		return r;
	if (o->message && strlen(o->message) > UG_MESSAGE_MAX)
		return ug_error_set(err, -E2BIG, "message is longer than %u bytes", UG_MESSAGE_MAX);
	r = ug_store_lock(s, false);
	if (r < 0)
		return ug_error_set(err, r, "repo '%s' is locked by another publish; try again when it finishes",
				    s->path);
	p.pub = o->key->pub;
	r = trust_key(&p, false, err);
	if (r < 0)
		return r;
	r = load_chains(&p, &chains, err);
	if (r < 0)
		return r;
	/* before any work: a rollout naming no group of the cluster would
	 * reach nobody there */
	if (o->rollout && ((r = ug_rollout_check(o->rollout, err)) < 0 ||
			   (r = ug_rollout_check_groups(o->rollout, chains, err)) < 0))
		goto out;
	treefd = open(o->tree, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (treefd < 0) {
		r = ug_error_set(err, -errno, "cannot open tree '%s': %s", o->tree, strerror(errno));
		goto out;
	}

	r = ug_store_ref_read(s, o->channel, &latest);
	if (r == -ENOENT) {
		latest = 0;
	} else if (r < 0) {
		ug_error_set(err, r, "cannot read ref '%s': %s", o->channel, strerror(-r));
		goto out;
	} else {
		r = load_history(&p, latest, err);
		if (r < 0)
			goto out;
	}

	p.m = ug_manifest_new();
	if (!p.m) {
		r = -ENOMEM;
		goto out;
	}
	p.m->chains = chains;
	chains = NULL;
	/* 100% of everyone is written as no rollout at all */
	if (!ug_rollout_is_everyone(o->rollout) && !(p.m->rollout = ug_rollout_dup(o->rollout))) {
		r = -ENOMEM;
		goto out;
	}
	{
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		p.scan_start_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	}
	r = scan_and_hash(&p, treefd, err);
	if (r < 0)
		goto out;
	r = analyze_structure(&p, treefd, err);
	if (r < 0)
		goto out;
	/* a new chain list is a new version even for the same tree, so that
	 * editing REPO/cluster and publishing reaches every server; so is a
	 * rollout asked for that differs from the latest's. Not asking for
	 * one (upgrid-watch, a plain publish) never makes a version of an
	 * identical tree: that would undo a staged rollout behind the
	 * operator's back. */
	if (p.parent && same_tree(p.parent, p.m) && ug_cluster_equal(p.parent->chains, p.m->chains) &&
	    (!o->rollout || ug_rollout_equal(p.parent->rollout, p.m->rollout))) {
		p.res.version = latest;
		p.res.unchanged = true;
		p.res.full_bytes = 0;
		r = 0;
		goto done;
	}
	p.m->format = UG_MANIFEST_FORMAT;
	p.m->channel = strdup(o->channel);
	p.m->message = o->message ? strdup(o->message) : NULL;
	ug_key_id(&p.pub, kid);
	p.m->key_id = strdup(kid);
	if (!p.m->channel || !p.m->key_id || (o->message && !p.m->message)) {
		r = -ENOMEM;
		goto out;
	}
	p.m->version = latest + 1;
	p.m->parent = latest;
	p.m->created = o->now ? o->now : ug_now();
	p.m->expires = p.m->created + 86400 * (int64_t)(o->expire_days ? o->expire_days : s->cfg.expire_days);
	r = diff_parent(&p);
	if (r < 0)
		goto out;
	r = run_jobs(&p, treefd, err);
	if (r < 0)
		goto out;
	r = trust_key(&p, true, err);
	if (r < 0)
		goto out;
	r = write_manifest(&p, err);
	if (r < 0)
		goto out;
	p.res.version = p.m->version;
	for (size_t v = 0; v < p.res.npairs; v++)
		p.res.pairs[v].best_bytes += p.res.pairs[v].manifest_delta_bytes;
done:
	/* only a cache: failing to write it costs the next publish time */
	if (ug_index_save(s, o->channel, &p.index, p.scan_start_ns) < 0)
		plog(o, UG_LOG_WARN, "cannot write the stat cache of channel '%s'", o->channel);
	*ret = p.res;
out:
	if (r < 0 && err && !err->msg[0])
		ug_error_set(err, r, "%s", strerror(-r));
	if (treefd >= 0)
		close(treefd);
	ug_cluster_free(chains);
	ug_manifest_free(p.m);
	for (size_t i = 0; i < 16; i++) {
		ug_manifest_free(p.olds[i]);
		free(p.old_json[i]);
		free(p.old_ix[i].h);
		bundle_plan_release(&p.plans[i]);
	}
	free(p.jobs);
	ug_index_release(&p.index);
	ug_rules_free(p.rules);
	return r;
}
