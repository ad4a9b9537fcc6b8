/* types.c - names of classes, actions and codecs as manifests spell them. */
#include "config.h"

#include <string.h>

#include "types.h"
#include "util.h"

static const char *const class_names[UG_CLASS__COUNT] = {
	"binary", "config", "data", "preserve",
};
static const char *const action_names[UG_ACTION__COUNT] = {
	"replace", "patch", "merge", "migrate", "preserve", "delete",
};
static const char *const codec_names[UG_CODEC__COUNT] = {
	"zstd-prefix", "rsync-zstd", "zstd-bundle",
};

static int lookup(const char *const *names, int n, const char *s)
{
	for (int i = 0; s && i < n; i++)
		if (strcmp(names[i], s) == 0)
			return i;
	return -EINVAL;
}

const char *ug_class_name(enum ug_class c)
{
	return (unsigned)c < UG_CLASS__COUNT ? class_names[c] : "?";
}

int ug_class_from_name(const char *s, enum ug_class *ret)
{
	int i = lookup(class_names, UG_CLASS__COUNT, s);
	if (i < 0)
		return i;
	*ret = (enum ug_class)i;
	return 0;
}

const char *ug_action_name(enum ug_action a)
{
	return (unsigned)a < UG_ACTION__COUNT ? action_names[a] : "?";
}

int ug_action_from_name(const char *s, enum ug_action *ret)
{
	int i = lookup(action_names, UG_ACTION__COUNT, s);
	if (i < 0)
		return i;
	*ret = (enum ug_action)i;
	return 0;
}

const char *ug_codec_name(enum ug_codec c)
{
	return (unsigned)c < UG_CODEC__COUNT ? codec_names[c] : "?";
}

int ug_codec_from_name(const char *s, enum ug_codec *ret)
{
	int i = lookup(codec_names, UG_CODEC__COUNT, s);
	if (i < 0)
		return i;
	*ret = (enum ug_codec)i;
	return 0;
}
