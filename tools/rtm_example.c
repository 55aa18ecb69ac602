/* The C guide's example (docs/c.md): a program that publishes three metrics with rtm.
 * Build (from the repository, after tools/run-demo or tools/run-tests):
 *   cc -O2 -Iproducer -Ishm-layout tools/rtm_example.c build/producer/librtm.a -pthread -o example */
#include <stdio.h>
#include <unistd.h>

#include <rtm.h>

int main(void)
{
	struct rtm_segment *seg;
	rtm_counter_t jobs;
	rtm_gauge_t queue;
	rtm_hist_t latency;
	int rc;

	rc = rtm_segment_open(&seg, &(struct rtm_segment_opts){
		.service_name = "example", .service_version = "1.0" });
	if (rc) {
		fprintf(stderr, "rtm_segment_open: error %d\n", rc);
		return 1;
	}
	rtm_counter_create(seg, &jobs, &(struct rtm_metric_def){
		.name = "example.jobs", .unit = "{job}",
		.description = "Jobs processed",
		.attrs = (struct rtm_attr[]){ { "queue", "default" } }, .n_attrs = 1 });
	rtm_gauge_create(seg, &queue, &(struct rtm_metric_def){
		.name = "example.queue.depth", .unit = "{job}" });
	rtm_hist_create(seg, &latency, &(struct rtm_metric_def){
		.name = "example.job.duration", .unit = "s" }); /* default bounds */

	for (int i = 1; i <= 100; i++) {
		rtm_counter_add(&jobs, 1);
		rtm_gauge_set(&queue, 100 - i);
		rtm_hist_record(&latency, 0.0005 * i);
	}
	printf("published to %s; inspect with: rtm-shmdump %d\n",
	       rtm_segment_path(seg), (int)getpid());
	fflush(stdout);
	sleep(60); /* stay alive so the segment shows as alive */
	rtm_segment_close(seg);
	return 0;
}
