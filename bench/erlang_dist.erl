%% erlang_dist - Erlang's distribution measured like bench/remote measures
%% libaemp: one-way throughput of 3-element messages between two nodes on
%% 127.0.0.1 with flow control, and ping-pong round trips (median, p99).
%% Run by bench/erlang_dist.sh; prints RESULT lines.
-module(erlang_dist).
-export([serve/0, run/1]).

-define(N, 2000000).
-define(WINDOW, 200000).
-define(ACK_EVERY, 50000).
-define(ROUNDS, 20000).

%% The server node: a sink that acknowledges every ACK_EVERY messages, and
%% an echo process for the ping-pong.
serve() ->
    register(sink, spawn(fun() -> receive {hello, From} -> sink(0, From) end end)),
    register(echo, spawn(fun echo/0)),
    receive stop -> ok end.

%% Messages are {tag, I, "x"}, like libaemp's ["tag", i, "x"]; the
%% sender introduced itself once with {hello, Pid}.
sink(Count, From) ->
    receive
        {tag, _, _} ->
            C = Count + 1,
            case C rem ?ACK_EVERY of
                0 -> From ! {ack, C};
                _ -> ok
            end,
            sink(C, From)
    end.

echo() ->
    receive
        {ping, I, From} -> From ! {pong, I}, echo()
    end.

%% The client node.
run([ServerName]) ->
    Server = list_to_atom(ServerName),
    true = net_kernel:connect_node(Server),
    Self = self(),
    {sink, Server} ! {hello, Self},
    T0 = erlang:monotonic_time(microsecond),
    send(Server, Self, 0, 0),
    T1 = erlang:monotonic_time(microsecond),
    Rate = ?N / ((T1 - T0) / 1.0e6),
    io:format("RESULT erlang_oneway ~w msgs/s~n", [round(Rate)]),
    Times = lists:sort([ping(Server, I) || I <- lists:seq(1, ?ROUNDS)]),
    Median = lists:nth(?ROUNDS div 2, Times),
    P99 = lists:nth(trunc(?ROUNDS * 0.99), Times),
    io:format("RESULT erlang_rtt_median ~.1f us~n", [Median / 1.0]),
    io:format("RESULT erlang_rtt_p99 ~.1f us~n", [P99 / 1.0]),
    halt(0).

%% Send N messages, never more than WINDOW ahead of the last ack.
send(_Server, _Self, ?N, ?N) -> ok;
send(Server, Self, Sent, Acked) when Sent < ?N, Sent - Acked < ?WINDOW ->
    {sink, Server} ! {tag, Sent, "x"},
    send(Server, Self, Sent + 1, Acked);
send(Server, Self, Sent, _Acked) ->
    receive {ack, C} -> send(Server, Self, Sent, C) end.

ping(Server, I) ->
    T0 = erlang:monotonic_time(microsecond),
    {echo, Server} ! {ping, I, self()},
    receive {pong, I} -> ok end,
    erlang:monotonic_time(microsecond) - T0.
