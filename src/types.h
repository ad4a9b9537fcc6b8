/* types.h - the small enumerations shared by rules, manifests and deltas,
 * with their names as they appear in manifests and on the command line. */
#ifndef UG_TYPES_H
#define UG_TYPES_H

#include <stdbool.h>

/* File class, chosen by .upgrid/rules (see upgrid-manifest(5)). */
enum ug_class {
	UG_CLASS_BINARY = 0,
	UG_CLASS_CONFIG,
	UG_CLASS_DATA,
	UG_CLASS_PRESERVE,
	UG_CLASS__COUNT
};

/* What a terminal does with a file of the new version. */
enum ug_action {
	UG_ACTION_REPLACE = 0,  /* write the new content (full object) */
	UG_ACTION_PATCH,        /* apply a binary delta */
	UG_ACTION_MERGE,        /* 3-way config merge against the pristine base */
	UG_ACTION_MIGRATE,      /* data migration (map columns, keep rows) */
	UG_ACTION_PRESERVE,     /* terminal-owned: never touched */
	UG_ACTION_DELETE,       /* remove the file */
	UG_ACTION__COUNT
};

/* Delta codecs. */
enum ug_codec {
	UG_CODEC_ZSTD_PREFIX = 0, /* zstd frame compressed with the base as prefix */
	UG_CODEC_RSYNC_ZSTD,      /* librsync delta, zstd-compressed */
	UG_CODEC_ZSTD_BUNDLE,     /* many targets, prefix = concatenated bases */
	UG_CODEC__COUNT
};

const char *ug_class_name(enum ug_class c);
int ug_class_from_name(const char *s, enum ug_class *ret);
const char *ug_action_name(enum ug_action a);
int ug_action_from_name(const char *s, enum ug_action *ret);
const char *ug_codec_name(enum ug_codec c);
int ug_codec_from_name(const char *s, enum ug_codec *ret);

#endif
