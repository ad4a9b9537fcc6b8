#ifndef UG_STRUCTURE_H
#define UG_STRUCTURE_H
#endif
