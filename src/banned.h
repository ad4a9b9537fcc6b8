/* banned.h - functions that must not be used in upgrid (as in git's
 * banned.h): unbounded copies and number parsers without error reporting.
 * Include last: it redefines the names so any use fails to compile. */
#ifndef UG_BANNED_H
#define UG_BANNED_H

#define UG_BANNED(func) sorry_##func##_is_banned_in_upgrid

#undef strcpy
#define strcpy(x, y) UG_BANNED(strcpy)
#undef strcat
#define strcat(x, y) UG_BANNED(strcat)
#undef sprintf
#define sprintf(...) UG_BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) UG_BANNED(vsprintf)
#undef strtok
#define strtok(x, y) UG_BANNED(strtok)
#undef atoi
#define atoi(x) UG_BANNED(atoi)
#undef atol
#define atol(x) UG_BANNED(atol)
#undef strtol
#define strtol(x, y, z) UG_BANNED(strtol)
#undef gets
#define gets(x) UG_BANNED(gets)

#endif
