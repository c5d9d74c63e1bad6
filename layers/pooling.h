/* Pooling: what the tests reach beyond the layer interface. */
#ifndef DL_LAYERS_POOLING_H
#define DL_LAYERS_POOLING_H

/* With on != 0, max pooling's 3x3 stride 2 rows take the portable path even
 * where the AVX-512 one would run, so the tests cover both on one machine. */
void dl_pooling_portable_only(int on);

#endif
