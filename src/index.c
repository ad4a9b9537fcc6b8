/* index.c - the publish stat cache (see index.h). */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "index.h"

#define INDEX_MAGIC "UGIX"
#define INDEX_FORMAT 1

static int index_path(const char *channel, char *out, size_t n)
{
	int r = ug_channel_check(channel, NULL);

	if (r < 0)
		return r;
	snprintf(out, n, "cache/%s.index", channel);
	return 0;
}

void ug_index_release(struct ug_index *ix)
{
	for (size_t i = 0; i < ix->n; i++)
		free(ix->e[i].path);
	free(ix->e);
	memset(ix, 0, sizeof(*ix));
}

static int grow(struct ug_index *ix)
{
	if (ix->n == ix->alloc) {
		size_t na = ix->alloc ? ix->alloc * 2 : 256;
		struct ug_index_entry *ne = reallocarray(ix->e, na, sizeof(*ne));
		if (!ne)
			return -ENOMEM;
		ix->e = ne;
		ix->alloc = na;
	}
	return 0;
}

static int parse(struct ug_buf *b, struct ug_index *ix)
{
	uint8_t magic[4];
	uint32_t format;
	uint64_t count;
	int r;

	if (ug_buf_get(b, magic, 4) < 0 || memcmp(magic, INDEX_MAGIC, 4) != 0 ||
	    ug_buf_get_u32(b, &format) < 0 || format != INDEX_FORMAT ||
	    ug_buf_get_u64(b, &count) < 0 || count > UG_FILES_MAX)
		return -EBADMSG;
	for (uint64_t i = 0; i < count; i++) {
		struct ug_index_entry *e;
		uint32_t plen;
		uint64_t mt, ct;

		if ((r = grow(ix)) < 0)
			return r;
		e = &ix->e[ix->n];
		memset(e, 0, sizeof(*e));
		if (ug_buf_get_u32(b, &plen) < 0 || plen == 0 || plen > UG_PATH_MAX ||
		    ug_buf_avail(b) < plen)
			return -EBADMSG;
		e->path = malloc(plen + 1);
		if (!e->path)
			return -ENOMEM;
		ug_buf_get(b, e->path, plen);
		e->path[plen] = '\0';
		ix->n++; /* owned by ix from here, freed on any error */
		if (strlen(e->path) != plen || ug_path_check(e->path, NULL) < 0 ||
		    (ix->n > 1 && strcmp(ix->e[ix->n - 2].path, e->path) >= 0))
			return -EBADMSG;
		if (ug_buf_get_u64(b, &e->dev) < 0 || ug_buf_get_u64(b, &e->ino) < 0 ||
		    ug_buf_get_u64(b, &e->size) < 0 || ug_buf_get_u64(b, &mt) < 0 ||
		    ug_buf_get_u64(b, &ct) < 0 || ug_buf_get(b, e->hash.b, UG_HASH_LEN) < 0 ||
		    ug_buf_get(b, e->xxh.b, UG_XXH_LEN) < 0)
			return -EBADMSG;
		e->mtime_ns = (int64_t)mt;
		e->ctime_ns = (int64_t)ct;
	}
	return ug_buf_avail(b) == 0 ? 0 : -EBADMSG;
}

int ug_index_load(struct ug_store *s, const char *channel, struct ug_index *ix)
{
	char path[UG_CHANNEL_MAX + 32];
	char *data = NULL;
	size_t len;
	struct ug_buf b;
	int r;

	r = index_path(channel, path, sizeof(path));
	if (r < 0)
		return r;
	r = ug_file_read(s->dirfd, path, UG_INDEX_FILE_MAX, &data, &len);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r == -E2BIG ? -EBADMSG : r;
	ug_buf_init(&b, len);
	r = ug_buf_put(&b, data, len);
	free(data);
	if (r == 0)
		r = parse(&b, ix);
	ug_buf_release(&b);
	if (r < 0)
		ug_index_release(ix);
	return r;
}

static int entry_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct ug_index_entry *)elem)->path);
}

const struct ug_index_entry *ug_index_lookup(const struct ug_index *ix,
					     const struct ug_scan_entry *e)
{
	const struct ug_index_entry *x;

	if (ix->n == 0)
		return NULL;
	x = bsearch(e->path, ix->e, ix->n, sizeof(*ix->e), entry_cmp);
	if (!x || x->dev != e->dev || x->ino != e->ino || x->size != e->size ||
	    x->mtime_ns != e->mtime_ns || x->ctime_ns != e->ctime_ns)
		return NULL;
	return x;
}

int ug_index_add(struct ug_index *ix, const struct ug_scan_entry *e,
		 const struct ug_hash *hash, const struct ug_xxh *xxh)
{
	struct ug_index_entry *x;
	int r = grow(ix);

	if (r < 0)
		return r;
	x = &ix->e[ix->n];
	memset(x, 0, sizeof(*x));
	x->path = strdup(e->path);
	if (!x->path)
		return -ENOMEM;
	x->dev = e->dev;
	x->ino = e->ino;
	x->size = e->size;
	x->mtime_ns = e->mtime_ns;
	x->ctime_ns = e->ctime_ns;
	x->hash = *hash;
	x->xxh = *xxh;
	ix->n++;
	return 0;
}

int ug_index_save(struct ug_store *s, const char *channel, const struct ug_index *ix,
		  int64_t scan_start_ns)
{
	char path[UG_CHANNEL_MAX + 32];
	struct ug_buf b;
	uint64_t count = 0;
	size_t count_off;
	int r;

	r = index_path(channel, path, sizeof(path));
	if (r < 0)
		return r;
	if (mkdirat(s->dirfd, "cache", 0755) < 0 && errno != EEXIST)
		return -errno;
	ug_buf_init(&b, UG_INDEX_FILE_MAX);
	r = ug_buf_put(&b, INDEX_MAGIC, 4);
	if (r == 0)
		r = ug_buf_put_u32(&b, INDEX_FORMAT);
	count_off = b.len;
	if (r == 0)
		r = ug_buf_put_u64(&b, 0); /* patched below */
	for (size_t i = 0; r == 0 && i < ix->n; i++) {
		const struct ug_index_entry *e = &ix->e[i];
		size_t plen = strlen(e->path);

		if (e->mtime_ns > scan_start_ns - UG_INDEX_RACY_NS ||
		    e->ctime_ns > scan_start_ns - UG_INDEX_RACY_NS)
			continue; /* racily clean: rehash it next time */
		r = ug_buf_put_u32(&b, (uint32_t)plen);
		if (r == 0)
			r = ug_buf_put(&b, e->path, plen);
		if (r == 0)
			r = ug_buf_put_u64(&b, e->dev);
		if (r == 0)
			r = ug_buf_put_u64(&b, e->ino);
		if (r == 0)
			r = ug_buf_put_u64(&b, e->size);
		if (r == 0)
			r = ug_buf_put_u64(&b, (uint64_t)e->mtime_ns);
		if (r == 0)
			r = ug_buf_put_u64(&b, (uint64_t)e->ctime_ns);
		if (r == 0)
			r = ug_buf_put(&b, e->hash.b, UG_HASH_LEN);
		if (r == 0)
			r = ug_buf_put(&b, e->xxh.b, UG_XXH_LEN);
		count++;
	}
	if (r == 0) {
		for (int i = 0; i < 8; i++)
			b.data[count_off + (size_t)i] = (uint8_t)(count >> (56 - 8 * i));
		r = ug_file_write_atomic(s->dirfd, path, b.data, b.len, 0644);
	}
	ug_buf_release(&b);
	return r;
}
