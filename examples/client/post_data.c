/* The article's POST sample: send JSON, print the JSON response.
 *
 *   data = {'key1': 'value1', 'key2': 'value2'}
 *   async with session.post(url, json=data) as response:
 *       return await response.json()
 *
 * usage: client_post_data URL */
#include <loom/client.h>

#include <stdio.h>
#include <stdlib.h>

static int status = 1;

static void on_done(loom_client_response *resp, void *ud)
{
    (void)ud;
    json_error_t jerr;
    json_t *j = NULL;
    if (loom_client_response_error(resp)) {
        fprintf(stderr, "%s\n", loom_client_response_message(resp));
    } else if (!(j = loom_client_response_json(resp, &jerr))) {
        fprintf(stderr, "the response is not JSON: %s\n", jerr.text);
    } else {
        char *text = json_dumps(j, JSON_SORT_KEYS);
        printf("%s\n", text);
        free(text);
        json_decref(j);
        status = 0;
    }
    loom_client_response_free(resp);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s URL\n", argv[0]);
        return 2;
    }
    json_t *data = json_pack("{s:s, s:s}", "key1", "value1", "key2", "value2");
    char *body = json_dumps(data, JSON_COMPACT);
    json_decref(data);

    uv_loop_t *loop = uv_default_loop();
    loom_client *session = loom_client_new(loop, NULL);
    loom_client_opts opts = {.json = body}; /* copied by loom_client_send */
    loom_client_send(session, "POST", argv[1], &opts, on_done, NULL);
    free(body);
    uv_run(loop, UV_RUN_DEFAULT);
    loom_client_close(session);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    return status;
}
