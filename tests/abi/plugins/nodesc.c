/* A shared library that is not a loom plugin: it has code but no
 * loom_plugin_entry. The host must refuse it with one line. */
__attribute__((visibility("default"))) int nodesc_answer(void);

int nodesc_answer(void)
{
    return 42;
}
