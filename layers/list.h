/* Every layer type, once. Adding a layer: write layers/NAME.c defining
 * `const dl_layer_ops dl_layer_NAME`, then add one DL_LAYER(NAME) line here. */
DL_LAYER(relu)
