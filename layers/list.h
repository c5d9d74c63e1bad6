/* Every layer type, once. Adding a layer: write layers/NAME.c defining
 * `const dl_layer_ops dl_layer_NAME`, then add one DL_LAYER(NAME) line here. */
DL_LAYER(relu)
DL_LAYER(conv)
DL_LAYER(pooling)
DL_LAYER(split)
DL_LAYER(mnist_data)
DL_LAYER(synthetic_data)
DL_LAYER(csv_data)
